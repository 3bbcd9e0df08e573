"""FLENwheel Qwen Edit Enrich: step 1.2 in a graph (sources in, 3-5 identity-kept edits each out)."""

from __future__ import annotations

from typing import Any

from ..core.data.errors import DatasetError
from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor, tensor_to_images
from ..core.data.text_lists import split_list
from ..core.enrich.edit_prompts import load_templates
from ..core.enrich.enrich import EnrichSettings, enrich
from ..core.identity.gate import DEFAULT_TOLERANCE, GATE_MODES, resolve_gate
from ._comfy import ProgressFn, check_interrupt, comfy_progress, interrupt_requested
from ._places import user_files
from ._types import CATEGORY, DATASET, PROJECT_INPUT, QWEN_EDIT_PIPELINE

MAX_SEED = 2**32 - 1


def _families(text: str) -> tuple[str, ...]:
    return tuple(split_list(text))


def _int(default: int, low: int, high: int, tooltip: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return ("INT", {"default": default, "min": low, "max": high, "tooltip": tooltip, **extra})


def _float(default: float, low: float, high: float, step: float, tooltip: str) -> tuple[str, dict[str, Any]]:
    return ("FLOAT", {"default": default, "min": low, "max": high, "step": step, "tooltip": tooltip})


def _lazy_progress() -> ProgressFn:
    """ComfyUI's bar needs its total up front; the engine knows it only after planning."""
    bar: dict[str, ProgressFn] = {}

    def update(done: int, total: int, image: Any = None) -> None:
        if "fn" not in bar:
            bar["fn"] = comfy_progress(total)
        bar["fn"](done, total, image)

    return update


class FlenwheelQwenEditEnrich:
    DESCRIPTION = (
        "Step 1.2: edits every source photo 3-5 ways with Qwen-Image-Edit-2509 (background, lighting, "
        "style, camera angle; the Multiple-angles commands when that LoRA is loaded), each asking to keep "
        "the person identical. Writes data/enriched/vN/ with enrichment_metadata.json. With "
        "face_recognition installed, a drifted face is regenerated with new seeds, then kept marked "
        "'drifted' for review. Re-running resumes: finished edits are skipped. Cancel stops after the "
        "current image, keeping everything done so far."
    )
    CATEGORY = f"{CATEGORY}/enrich"
    RETURN_TYPES = ("IMAGE", DATASET, "STRING")
    RETURN_NAMES = ("images", "enriched", "summary")
    OUTPUT_TOOLTIPS = (
        "Every image of the enriched version (mixed sizes letterboxed).",
        "Handle to the enriched dataset version (for review and training).",
        "Count vs 5x sources, identity-kept rate vs 70%, spread across families.",
    )
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        families = ", ".join(load_templates().families)
        return {
            "required": {
                "project": PROJECT_INPUT,
                "qwen_edit": (QWEN_EDIT_PIPELINE, {"tooltip": "From FLENwheel Qwen-Image-Edit Loader."}),
                "per_source": _int(4, 1, 20, "Edits per source photo (the seed asks for 3-5)."),
                "base_seed": _int(0, 0, MAX_SEED, "Run seed; each edit's seed derives from it (keep it fixed "
                                  "to resume).", control_after_generate=False),
                "steps": _int(40, 1, 200, "Denoising steps per edit."),
                "true_cfg": _float(4.0, 0.0, 20.0, 0.1, "True CFG scale (1 or less: no negative prompt)."),
                "families": ("STRING", {"default": "", "tooltip": (
                    "Comma-separated template families (blank: all that fit the LoRAs). "
                    f"Built in: {families}.")}),
                "identity_gate": (list(GATE_MODES), {"default": "auto", "tooltip": (
                    "auto: check faces when face_recognition is installed; on: require it; off: no check.")}),
                "tolerance": _float(DEFAULT_TOLERANCE, 0.2, 1.0, 0.01,
                                    "Face distance up to which the identity counts as kept."),
                "max_retries": _int(2, 0, 10, "New seeds tried for a drifted edit before keeping it."),
                "width": _int(0, 0, 4096, "Output width (0: follow the source's aspect ratio).", step=16),
                "height": _int(0, 0, 4096, "Output height (0: follow the source's aspect ratio).", step=16),
                "megapixels": _float(1.0, 0.05, 4.0, 0.05, "Output area when width/height are 0."),
                "reference_mode": (["none", "other_source"], {"default": "none", "tooltip": (
                    "other_source: another source photo (a different angle when tagged) goes in as "
                    "Picture 2. A connected reference image overrides this.")}),
            },
            "optional": {
                "reference": ("IMAGE", {"tooltip": "A second view of the character, passed as Picture 2."}),
                "sources": (DATASET, {"tooltip": "Only these source records (default: the latest sources)."}),
                "templates_file": ("STRING", {"default": "", "tooltip": "YAML file with your own families."}),
                "negative_prompt": ("STRING", {"default": " ", "tooltip": "Negative prompt (true_cfg > 1)."}),
                "condition_pixels": _int(0, 0, 4194304, "Input area for the vision encoder (0: 384x384)."),
                "vae_pixels": _int(0, 0, 4194304, "Input area for the VAE (0: diffusers' 1024x1024)."),
                "new_version": ("BOOLEAN", {"default": False, "tooltip": (
                    "Start a new enriched version instead of resuming the latest one.")}),
            },
        }

    def run(self, project, qwen_edit, per_source, base_seed, steps, true_cfg, families, identity_gate,
            tolerance, max_retries, width, height, megapixels, reference_mode, reference=None, sources=None,
            templates_file="", negative_prompt=" ", condition_pixels=0, vae_pixels=0, new_version=False):
        settings = EnrichSettings(
            per_source=per_source, families=_families(families), seed=base_seed, steps=steps,
            true_cfg=true_cfg,
            negative_prompt=negative_prompt, width=width or None, height=height or None,
            pixels=int(megapixels * 1024 * 1024), vae_pixels=vae_pixels or None,
            condition_pixels=condition_pixels or None, max_retries=max_retries,
            reference="image" if reference is not None else reference_mode,
            template_files=user_files(templates_file, "templates file"),
        )
        scorer = resolve_gate(project, identity_gate, tolerance)
        reference_image = tensor_to_images(reference)[0] if reference is not None else None
        result = enrich(project, qwen_edit, settings, scorer=scorer, source=sources,
                        reference_image=reference_image, new_version=new_version,
                        on_progress=_lazy_progress(), should_stop=interrupt_requested)
        if result.stopped:
            check_interrupt()
        handle = DatasetHandle(result.dataset)
        if not len(handle):
            raise DatasetError(f"{handle.label} has no images yet; run the node again")
        lines = result.summary.lines() + [f"this run: {len(result.added)} new, {result.resumed} resumed"]
        return (images_to_tensor(handle.load_images()), handle, "\n".join(lines))


NODE_CLASS_MAPPINGS = {"FlenwheelQwenEditEnrich": FlenwheelQwenEditEnrich}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelQwenEditEnrich": "FLENwheel Qwen Edit Enrich"}
