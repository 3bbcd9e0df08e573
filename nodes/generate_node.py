"""FLENwheel FLUX LoRA Generate: step 1.5 in a graph (FLUX + LoRA in, synthetic dataset out)."""

from __future__ import annotations

from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor, load_image
from ..core.generate.generate import run_generation
from ..core.generate.prompt_sets import FAMILIES
from ._comfy import check_interrupt, comfy_progress
from ._prompt_inputs import aimed_from_inputs, prompt_inputs, render_inputs
from ._types import CATEGORY, DATASET, PROJECT_INPUT
from .flux_node import FLUX_INPUT


class FlenwheelFluxLoraGenerate:
    DESCRIPTION = (
        "Step 1.5: generates synthetic images of the character with FLUX + its LoRA into data/synthetic/vN/: "
        "prompt families (angles, expressions, scenarios, poses) x variants, each with a recorded seed. "
        "The same total is shared out by need: more variants for the cells the newest model card failed and "
        "the views, expressions and poses the LoRA's training set lacks (prompts of your prompts file keep "
        "theirs); the summary shows the allocation. Every "
        "image is saved before the progress bar moves, so Cancel keeps finished images and a rerun resumes. "
        "The summary checks the seed's criteria: 50+ images, model-card targets covered, prompt and seed "
        "recorded."
    )
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = ("IMAGE", DATASET, "STRING")
    RETURN_NAMES = ("images", "dataset", "summary")
    OUTPUT_TOOLTIPS = (
        "The images of this plan (generated now or earlier).",
        "Handle to data/synthetic/vN.",
        "What was generated, and the step-1.5 criteria with pass/fail.",
    )
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "project": PROJECT_INPUT,
                "families": (
                    "STRING",
                    {
                        "default": ", ".join(FAMILIES),
                        "tooltip": "Prompt families to generate (comma list); your YAML may add more.",
                    },
                ),
                **render_inputs(4),
                "batch_size": (
                    "INT",
                    {
                        "default": 1,
                        "min": 1,
                        "max": 16,
                        "tooltip": "Images per pipeline call; halved automatically when the GPU runs out "
                        "of memory.",
                    },
                ),
                "version": (
                    "STRING",
                    {
                        "default": "auto",
                        "tooltip": "auto: resume the latest synthetic version made with the same model "
                        "and LoRAs, else "
                        "start a new one; new: always a new one; vN: that version.",
                    },
                ),
            },
            "optional": {
                **prompt_inputs(),
                "prompt_ids": (
                    "STRING",
                    {"default": "", "tooltip": "Only these prompt ids (comma list; blank: all)."},
                ),
                "limit": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 100000,
                        "tooltip": "Only the first N planned images (0: all).",
                    },
                ),
                "finish": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "Seal the version once every planned image is in it."},
                ),
                "max_output_images": (
                    "INT",
                    {
                        "default": 64,
                        "min": 0,
                        "max": 100000,
                        "tooltip": "Images returned on the IMAGE output (0: all; they stay on disk either "
                        "way).",
                    },
                ),
            },
        }

    def generate(
        self,
        flux,
        project,
        families,
        variants,
        base_seed,
        width,
        height,
        steps,
        guidance,
        batch_size,
        version,
        prompts_file="",
        negative_prompt="",
        true_cfg=1.0,
        prompt_ids="",
        limit=0,
        finish=False,
        max_output_images=64,
    ):
        aimed = aimed_from_inputs(project, flux, prompts_file, families, prompt_ids, variants, base_seed, width,
                                  height, steps, guidance, negative_prompt, true_cfg)
        prompt_set, plan = aimed.prompt_set, aimed.plan[:limit] if limit else aimed.plan
        progress = comfy_progress(len(plan))
        chosen = version.strip().lower()
        report = run_generation(
            project,
            flux,
            plan,
            version=None if chosen in ("", "auto", "new") else version.strip(),
            new_version=chosen == "new",
            batch_size=batch_size,
            finish=finish,
            on_image=lambda done, total, image, record: progress(done, total, image),
            step_callback=lambda step, total: check_interrupt(),
            info={
                "prompt_sets": prompt_set.sources,
                "families": prompt_set.families(),
                "variants": variants,
                "base_seed": base_seed,
                "aim": aimed.allocation.to_json(),
            },
        )
        shown = report.records[:max_output_images] if max_output_images else report.records
        images = [load_image(report.dataset.image_path(record)) for record in shown]
        summary = [*aimed.allocation.lines(), *report.lines()]
        return (images_to_tensor(images), DatasetHandle(report.dataset), "\n".join(summary))


NODE_CLASS_MAPPINGS = {
    "FlenwheelFluxLoraGenerate": FlenwheelFluxLoraGenerate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelFluxLoraGenerate": "FLENwheel FLUX LoRA Generate",
}
