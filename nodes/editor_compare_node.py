"""FLENwheel Compare Editors and Editor Report: step 2.3 in a graph (base vs dx8152 vs our editor LoRA)."""

from __future__ import annotations

from ..core.data.errors import FlenwheelError
from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor
from ..core.editor.editor_compare import held_back_sources, parse_editors, run_comparison
from ..core.editor.editor_report import chart_image, editor_report
from ..core.editor.editor_skip import skipped_in
from ..core.enrich.plan import EnrichSettings
from ..core.identity.gate import GATE_MODES, resolve_gate
from ._comfy import check_interrupt, interrupt_requested
from ._places import checked_loras
from ._review_routes import remember_project
from ._types import CATEGORY, DATASET, PROJECT_INPUT, QWEN_EDIT_PIPELINE
from .enrich_node import MAX_SEED, _families, _float, _int, _lazy_progress

_IDENTITY = (list(GATE_MODES), {"default": "auto", "tooltip": (
    "auto: score faces against the character when face_recognition and usable reference faces exist "
    "(scores only, no retries); on: require it; off: skip.")})


def _held_back(project, triplets: DatasetHandle | None, limit: int) -> tuple[DatasetHandle | None, list[str]]:
    """The sources to compare on (None: all of them) and a line saying which were held back."""
    if triplets is None:
        return None, []
    if triplets.dataset.stage != "qwen_training":
        raise FlenwheelError(f"triplets must come from a Triplet Writer, not {triplets.label}")
    source, note = held_back_sources(project, triplets.dataset.version, limit)
    return source, [f"{len(source)} sources {note}"]


class FlenwheelCompareEditors:
    DESCRIPTION = (
        "Step 2.3: runs the same sources, templates and seeds through each editor (base, a named LoRA such as "
        "dx8152:PATH, or the project's editor LoRA ours:vN) into separate enriched versions, each recording "
        "its editor. Review those versions (ReviewGate or the review page), then run FLENwheel Editor Report. "
        "Rerunning with the same name resumes and skips finished edits. Waiting for a skipped editor "
        "training (its summary starts with 'skipped:'), it passes through with the same reason."
    )
    CATEGORY = f"{CATEGORY}/editor"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("comparison", "summary")
    OUTPUT_TOOLTIPS = (
        "The comparison's name, for FLENwheel Editor Report.",
        "Which enriched version each editor wrote.",
    )
    FUNCTION = "compare"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "qwen_edit": (QWEN_EDIT_PIPELINE, {"tooltip": (
                    "Qwen-Image-Edit-2509 from the loader; its own LoRAs are ignored, each editor brings its own.")}),
                "editors": ("STRING", {"default": "base, ours:latest", "multiline": True, "tooltip": (
                    "Comma-separated editors: base, NAME:PATH[:STRENGTH] (e.g. dx8152:/loras/angles.safetensors:"
                    "1.25), ours:vN[:STRENGTH]; join LoRAs with +.")}),
                "name": ("STRING", {"default": "", "tooltip": (
                    "Comparison name (blank: a new one); an earlier name resumes it.")}),
                "per_source": _int(4, 1, 20, "Edits per source photo."),
                "base_seed": _int(0, 0, MAX_SEED, "Run seed; every editor gets the same derived seeds.",
                                  control_after_generate=False),
                "steps": _int(40, 1, 200, "Denoising steps per edit."),
                "true_cfg": _float(4.0, 0.0, 20.0, 0.1, "True CFG scale."),
                "width": _int(0, 0, 4096, "Output width (0: follow the source's aspect ratio).", step=16),
                "height": _int(0, 0, 4096, "Output height (0: follow the source's aspect ratio).", step=16),
                "identity": _IDENTITY,
            },
            "optional": {
                "families": ("STRING", {"default": "", "tooltip": (
                    "Comma-separated template families (blank: all that fit any editor's LoRAs).")}),
                "condition_pixels": _int(0, 0, 4194304, "Input area for the vision encoder (0: 384x384)."),
                "vae_pixels": _int(0, 0, 4194304, "Input area for the VAE (0: diffusers' 1024x1024)."),
                "wait_for": ("STRING", {"forceInput": True, "tooltip": (
                    "Compare only after the node wired here has run (e.g. Train Qwen-Edit LoRA's summary, so "
                    "ours:latest is the LoRA it just trained). A text starting with 'skipped:' (the training "
                    "was skipped) makes this node pass through with that reason.")}),
                "triplets": (DATASET, {"tooltip": (
                    "Triplet Writer's triplets: compare on sources none of them came from, as the headless loop "
                    "does, so our editor is judged on photos it was not trained on (a skip passes through).")}),
                "held_back": _int(4, 1, 100, "With triplets wired: at most this many held-back sources (the "
                                  "headless loop's editor.compare_sources)."),
            },
        }

    def compare(self, project, qwen_edit, editors, name, per_source, base_seed, steps, true_cfg, width, height,
                identity, families="", condition_pixels=0, vae_pixels=0, wait_for=None, triplets=None,
                held_back=4):
        """``wait_for`` only orders the graph, unless it carries a skip."""
        remember_project(project)
        skip = skipped_in(wait_for, triplets)
        if skip is not None:
            return {"ui": {"text": [skip.text]}, "result": ("", skip.text)}
        chosen = parse_editors([editors.replace("\n", ",")], project)
        checked_loras(spec.path for editor in chosen for spec in editor.loras)
        settings = EnrichSettings(per_source=per_source, families=_families(families), seed=base_seed, steps=steps,
                                  true_cfg=true_cfg, width=width or None, height=height or None,
                                  condition_pixels=condition_pixels or None, vae_pixels=vae_pixels or None)
        source, held = _held_back(project, triplets, held_back)
        run = run_comparison(project, qwen_edit, chosen, settings, name.strip() or None, source,
                             scorer=resolve_gate(project, identity), should_stop=interrupt_requested,
                             on_progress=_lazy_progress())
        if run.stopped:
            check_interrupt()
        lines = [f"comparison {run.name}", *held]
        lines += [f"{e['label']}: enriched/{e['version']}" for e in run.data["editors"]]
        lines.append("review these versions, then run FLENwheel Editor Report")
        text = "\n".join(lines)
        return {"ui": {"text": [text]}, "result": (run.name, text)}


class FlenwheelEditorReport:
    DESCRIPTION = (
        "Step 2.3 report: per editor of a comparison, the needs_correction rate, reject rate, keep rate, mean "
        "identity distance and identity kept rate from the review decisions, as a table and a bar chart "
        "(benchmarks/editors/NAME/), with the seed's success criteria: our editor LoRA needs fewer corrections "
        "and keeps the identity better than the others. Without measurable faces it says so."
    )
    CATEGORY = f"{CATEGORY}/editor"
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("chart", "table", "report")
    OUTPUT_TOOLTIPS = (
        "Bar chart of the rates and identity distance per editor.",
        "The per-editor table (Markdown).",
        "Table, identity note and PASS/FAIL of the success criteria.",
    )
    FUNCTION = "report"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "comparison": ("STRING", {"default": "latest", "tooltip": (
                    "Comparison name (from FLENwheel Compare Editors), or 'latest'.")}),
                "identity": _IDENTITY,
            },
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        """Review decisions change outside the graph: always report afresh."""
        return float("nan")

    def report(self, project, comparison, identity):
        name = None if comparison.strip() in ("", "latest") else comparison.strip()
        result = editor_report(project, name, identity)
        text = "\n".join(result.lines())
        return {"ui": {"text": [text]},
                "result": (images_to_tensor([chart_image(result)]), result.markdown(), text)}


NODE_CLASS_MAPPINGS = {
    "FlenwheelCompareEditors": FlenwheelCompareEditors,
    "FlenwheelEditorReport": FlenwheelEditorReport,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelCompareEditors": "FLENwheel Compare Editors",
    "FlenwheelEditorReport": "FLENwheel Editor Report",
}
