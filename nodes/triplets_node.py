"""FLENwheel Triplet Writer and Correction Re-run: Flywheel 2's step 2.1 in a graph."""

from __future__ import annotations

from ..core.data.errors import FlenwheelError
from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor, load_image
from ..core.data.text_lists import split_list
from ..core.editor.correction_rerun import TRAIN_ON, rerun_correction
from ..core.editor.correction_targets import correction_items
from ..core.editor.editor_skip import DEFAULT_MIN_TRIPLETS, too_few_triplets
from ..core.editor.triplets import CAPTION_CHOICES, NoTripletsError, build_triplets
from ..core.identity.gate import GATE_MODES, resolve_gate
from ._comfy import comfy_progress
from ._review_routes import remember_project
from ._types import CATEGORY, DATASET, PROJECT_INPUT, QWEN_EDIT_PIPELINE, version_or_none

_IDENTITY = (list(GATE_MODES), {"default": "auto", "tooltip": (
    "auto: measure face distances when face_recognition and usable reference faces exist; on: require "
    "it; off: skip.")})


def _enriched_version(project, version: str, *handles: DatasetHandle | None) -> str:
    """The enriched version a wired dataset belongs to, else the widget's (latest when blank)."""
    wired = {h.dataset.version for h in handles if h is not None}
    for handle in (h for h in handles if h is not None):
        if handle.dataset.stage not in ("enriched", "reruns"):
            raise FlenwheelError(f"{handle.label} is not an enriched dataset or its re-runs")
    if len(wired) > 1:
        raise FlenwheelError(f"the wired datasets belong to different enriched versions ({', '.join(sorted(wired))})")
    return wired.pop() if wired else version_or_none(version) or project.dataset("enriched").version


class FlenwheelTripletWriter:
    DESCRIPTION = (
        "Step 2.1: turns every enriched edit reviewed as needs_correction into a (source, edit prompt, corrected "
        "target) triplet. The target is a fixed image dropped into data/enriched/vN/corrections/fixed/ (or picked "
        "in the review page), else the accepted re-run. Writes data/qwen_training/vN/ (triplets.jsonl for "
        "musubi-tuner and the Qwen-Edit trainer, control/ + target/ folders for ai-toolkit, hashed and sealed) "
        "with a report (10+ triplets, before/after difference, identity of target vs failed edit) and a side-by-"
        "side sheet. Rerunning with nothing new writes nothing. With fewer than min_triplets (none at all "
        "included) it does not fail: its triplets output tells Train Qwen-Edit LoRA and Compare Editors to "
        "pass through with 'skipped: N triplets, fewer than M', as the headless loop skips them."
    )
    CATEGORY = f"{CATEGORY}/editor"
    RETURN_TYPES = ("IMAGE", DATASET, "STRING", "STRING")
    RETURN_NAMES = ("sheet", "triplets", "jsonl_path", "report")
    OUTPUT_TOOLTIPS = (
        "Side-by-side sheet: source, failed edit and corrected target in each row, with issue and differences.",
        "Handle to data/qwen_training/vN (records are the targets, with lineage); with fewer than "
        "min_triplets, a skip that makes the editor training and comparison wired after it pass through.",
        "Path of triplets.jsonl, the dataset_path for the Qwen-Edit trainer.",
        "The step-2.1 criteria, and what was left out or still waits for a target.",
    )
    FUNCTION = "write"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "version": ("STRING", {"default": "new", "tooltip": (
                    "Triplets version to write: 'new' (the next data/qwen_training/vN, or the latest when it "
                    "already holds exactly these triplets) or vN.")}),
                "enriched_versions": ("STRING", {"default": "all", "tooltip": (
                    "Enriched versions to take corrections from: 'all' or a comma list (v1, v2).")}),
                "identity": _IDENTITY,
                "caption": (list(CAPTION_CHOICES), {"default": "as_chosen", "tooltip": (
                    "Caption of re-run targets: the prompt chosen at re-run time, or force the original or "
                    "the improved prompt.")}),
            },
            "optional": {
                "corrections": (DATASET, {"tooltip": (
                    "A ReviewGate's corrections output: only its enriched version is used (and the writer "
                    "runs after the review).")}),
                "accepted_reruns": (DATASET, {"tooltip": (
                    "A rerun ReviewGate's accepted output: the writer runs after that review.")}),
                "min_triplets": ("INT", {"default": DEFAULT_MIN_TRIPLETS, "min": 1, "max": 10000, "tooltip": (
                    "Fewest triplets worth training the editor LoRA on (the headless loop's editor.min_triplets). "
                    "Below it the triplets are still written, but Train Qwen-Edit LoRA and Compare Editors "
                    "wired after this node pass through with 'skipped: N triplets, fewer than M'.")}),
                "wait_for": ("STRING", {"forceInput": True, "tooltip": (
                    "Write only after the node wired here has run (e.g. the model card's summary in a "
                    "whole-turn graph); its value is not used.")}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        """Fixes and review decisions live outside the graph: never reuse a cached result."""
        return float("nan")

    def write(self, project, version, enriched_versions, identity, caption, corrections=None,
              accepted_reruns=None, min_triplets=DEFAULT_MIN_TRIPLETS, wait_for=None):
        """``wait_for`` only orders the graph: ComfyUI runs a node after everything wired into it."""
        remember_project(project)
        versions = None
        if corrections is not None or accepted_reruns is not None:
            versions = [_enriched_version(project, "", corrections, accepted_reruns)]
        elif enriched_versions.strip() not in ("", "all"):
            versions = split_list(enriched_versions)
        wanted = None if version.strip() in ("", "new", "latest") else version.strip()
        try:
            result = build_triplets(project, versions, wanted, identity, caption)
        except NoTripletsError as exc:
            skip = too_few_triplets(0, min_triplets)
            text = f"{skip.text}\n{exc}"
            return {"ui": {"text": [text]}, "result": (images_to_tensor([skip.image()]), skip, "", text)}
        sheet = load_image(result.dataset.path / "sheet.png")
        skip = too_few_triplets(len(result.lines), min_triplets)
        text = "\n".join(result.summary() + ([f"{skip.text}: the editor LoRA is not trained"] if skip else []))
        triplets = skip or DatasetHandle(result.dataset)
        return {"ui": {"text": [text]}, "result": (images_to_tensor([sheet]), triplets, str(result.jsonl), text)}


class FlenwheelCorrectionRerun:
    DESCRIPTION = (
        "Step 2.1, improved prompt: re-runs an edit reviewed as needs_correction with a revised prompt and new "
        "seeds, exactly as it was made otherwise (source, size, steps, CFG, second view). The re-runs go into "
        "data/reruns/vN; review them with a ReviewGate set to 'rerun' (or in the review page), and the accepted "
        "one becomes the triplet's target. Leave the prompt blank to add what the review reason asks for."
    )
    CATEGORY = f"{CATEGORY}/editor"
    RETURN_TYPES = ("IMAGE", DATASET, "STRING")
    RETURN_NAMES = ("reruns", "rerun_dataset", "summary")
    OUTPUT_TOOLTIPS = (
        "The re-runs made now.",
        "Handle to the new re-runs in data/reruns/vN, for a ReviewGate with stage 'rerun'.",
        "Which edits were re-run, with which prompt and seeds.",
    )
    FUNCTION = "rerun"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "qwen_edit": (QWEN_EDIT_PIPELINE, {"tooltip": (
                    "From FLENwheel Qwen-Image-Edit Loader (the same model; add our editor LoRA to test it).")}),
                "image": ("STRING", {"default": "all", "tooltip": (
                    "The edit to re-run: its id, an id prefix (8+ characters) or file name; 'all' re-runs every "
                    "correction that has no target yet.")}),
                "prompt": ("STRING", {"default": "", "multiline": True, "tooltip": (
                    "Revised prompt; {prompt} stands for the original. Blank: the original plus what the "
                    "review reason asks for.")}),
                "seeds": ("INT", {"default": 3, "min": 1, "max": 32, "tooltip": "New seeds to try per edit."}),
                "train_on": (list(TRAIN_ON), {"default": "original", "tooltip": (
                    "Caption of the triplet if a re-run is accepted: the original instruction (the editor "
                    "learns to follow it better) or the improved prompt.")}),
                "identity": _IDENTITY,
                "enriched_version": ("STRING", {"default": "latest", "tooltip": (
                    "Enriched version of the corrections: 'latest' or vN (a wired corrections input wins).")}),
            },
            "optional": {
                "corrections": (DATASET, {"tooltip": (
                    "A ReviewGate's corrections output; with image 'all', only these edits are re-run.")}),
            },
        }

    def rerun(self, project, qwen_edit, image, prompt, seeds, train_on, identity, enriched_version,
              corrections=None):
        remember_project(project)
        version = _enriched_version(project, enriched_version, corrections)
        if image.strip() == "all":
            wanted = set(corrections.ids) if corrections is not None and corrections.ids is not None else None
            targets = [i.record.id for i in correction_items(project, version)[0]
                       if i.target_state in ("no target yet", "re-runs to review")
                       and (wanted is None or i.record.id in wanted)]
        else:
            targets = [image.strip()]
        if not targets:
            raise FlenwheelError(f"every correction of enriched/{version} already has a target")
        scorer = resolve_gate(project, identity)
        progress = comfy_progress(len(targets) * seeds)
        made, lines, dataset = [], [], None
        for target in targets:
            result = rerun_correction(project, qwen_edit, version, target, prompt.strip() or None, seeds, train_on,
                                      scorer=scorer)
            dataset = result.dataset
            made += result.added
            lines.append(f"{result.failed.filename}: {len(result.added)} re-run(s), prompt: {result.prompt}")
            progress(len(made), len(targets) * seeds, made[-1][1] if made else None)
        if not made:
            raise FlenwheelError("no new re-runs were made (these seeds were tried before)")
        handle = DatasetHandle(dataset, tuple(record.id for record, _ in made))
        return (images_to_tensor([image for _, image in made]), handle, "\n".join(lines))


NODE_CLASS_MAPPINGS = {
    "FlenwheelTripletWriter": FlenwheelTripletWriter,
    "FlenwheelCorrectionRerun": FlenwheelCorrectionRerun,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelTripletWriter": "FLENwheel Triplet Writer",
    "FlenwheelCorrectionRerun": "FLENwheel Correction Re-run",
}
