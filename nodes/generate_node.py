"""FLENwheel FLUX LoRA Generate (step 1.5) and FLENwheel Compare LoRAs, in a graph."""

from __future__ import annotations

from ..core.compare import compare_loras, parse_columns, save_comparison
from ..core.generate import run_generation
from ..core.handles import DatasetHandle
from ..core.images import images_to_tensor, load_image
from ..core.prompt_sets import FAMILIES, plan_run
from ._comfy import check_interrupt, comfy_progress
from ._types import CATEGORY, DATASET, PROJECT_INPUT
from .flux_node import FLUX_INPUT, lora_lookup

SEED_MAX = 2**31 - 1


def _split(text: str) -> list[str] | None:
    return [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()] or None


def _size(default: int, what: str) -> tuple[str, dict]:
    return ("INT", {"default": default, "min": 64, "max": 4096, "step": 16, "tooltip": f"Image {what} in pixels."})


def _render_inputs(variants: int) -> dict[str, tuple]:
    return {
        "variants": ("INT", {"default": variants, "min": 1, "max": 64,
                             "tooltip": "Images per prompt, each with its own recorded seed."}),
        "base_seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "tooltip":
                      "Run seed: each image's seed derives from it, the prompt id and the variant (same seeds "
                      "for every LoRA, so runs compare and resume)."}),
        "width": _size(1024, "width"),
        "height": _size(1024, "height"),
        "steps": ("INT", {"default": 28, "min": 1, "max": 200, "tooltip": "Denoising steps (28 for FLUX.1-dev)."}),
        "guidance": ("FLOAT", {"default": 3.5, "min": 0.0, "max": 30.0, "step": 0.1,
                               "tooltip": "FLUX distilled guidance (3.5 typical)."}),
    }


def _prompt_inputs() -> dict[str, tuple]:
    return {
        "prompts_file": ("STRING", {"default": "", "tooltip":
                         "YAML file extending the built-in prompts (blank: built-in only); see docs/generate.md."}),
        "negative_prompt": ("STRING", {"default": "", "multiline": True, "tooltip":
                            "Negative prompt for prompts without their own; acts only with true_cfg > 1."}),
        "true_cfg": ("FLOAT", {"default": 1.0, "min": 1.0, "max": 30.0, "step": 0.1, "tooltip":
                     "True CFG scale; above 1 the negative prompt is used and each image takes twice as long."}),
    }


def _plan(project, prompts_file, families, prompt_ids, variants, base_seed, width, height, steps, guidance,
          negative_prompt, true_cfg, firsts=False):
    files = [prompts_file.strip()] if prompts_file.strip() else []
    run = {"width": width, "height": height, "steps": steps, "guidance": guidance, "true_cfg": true_cfg,
           "negative_prompt": negative_prompt.strip() or None}
    return plan_run(project, files, families=_split(families), ids=_split(prompt_ids), variants=variants,
                    base_seed=base_seed, run_settings=run, first_of_each_family=firsts)


class FlenwheelFluxLoraGenerate:
    DESCRIPTION = (
        "Step 1.5: generates synthetic images of the character with FLUX + its LoRA into data/synthetic/vN/: "
        "prompt families (angles, expressions, scenarios, poses) x variants, each with a recorded seed. Every "
        "image is saved before the progress bar moves, so Cancel keeps finished images and a rerun resumes. "
        "The summary checks the seed's criteria: 50+ images, model-card targets covered, prompt and seed recorded."
    )
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = ("IMAGE", DATASET, "STRING")
    RETURN_NAMES = ("images", "dataset", "summary")
    OUTPUT_TOOLTIPS = ("The images of this plan (generated now or earlier).", "Handle to data/synthetic/vN.",
                       "What was generated, and the step-1.5 criteria with pass/fail.")
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "project": PROJECT_INPUT,
                "families": ("STRING", {"default": ", ".join(FAMILIES), "tooltip":
                             "Prompt families to generate (comma list); your YAML may add more."}),
                **_render_inputs(4),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 16, "tooltip":
                               "Images per pipeline call; halved automatically when the GPU runs out of memory."}),
                "version": ("STRING", {"default": "auto", "tooltip":
                            "auto: resume the latest synthetic version made with the same model and LoRAs, else "
                            "start a new one; new: always a new one; vN: that version."}),
            },
            "optional": {
                **_prompt_inputs(),
                "prompt_ids": ("STRING", {"default": "", "tooltip": "Only these prompt ids (comma list; blank: all)."}),
                "limit": ("INT", {"default": 0, "min": 0, "max": 100000,
                                  "tooltip": "Only the first N planned images (0: all)."}),
                "finish": ("BOOLEAN", {"default": False,
                                       "tooltip": "Seal the version once every planned image is in it."}),
                "max_output_images": ("INT", {"default": 64, "min": 0, "max": 100000, "tooltip":
                                      "Images returned on the IMAGE output (0: all; they stay on disk either way)."}),
            },
        }

    def generate(self, flux, project, families, variants, base_seed, width, height, steps, guidance, batch_size,
                 version, prompts_file="", negative_prompt="", true_cfg=1.0, prompt_ids="", limit=0, finish=False,
                 max_output_images=64):
        prompt_set, plan = _plan(project, prompts_file, families, prompt_ids, variants, base_seed, width, height,
                                 steps, guidance, negative_prompt, true_cfg)
        plan = plan[:limit] if limit else plan
        progress = comfy_progress(len(plan))
        chosen = version.strip().lower()
        report = run_generation(
            project, flux, plan, version=None if chosen in ("", "auto", "new") else version.strip(),
            new_version=chosen == "new", batch_size=batch_size, finish=finish,
            on_image=lambda done, total, image, record: progress(done, total, image),
            step_callback=lambda step, total: check_interrupt(),
            info={"prompt_sets": prompt_set.sources, "families": prompt_set.families(), "variants": variants,
                  "base_seed": base_seed})
        shown = report.records[:max_output_images] if max_output_images else report.records
        images = [load_image(report.dataset.image_path(record)) for record in shown]
        return (images_to_tensor(images), DatasetHandle(report.dataset), "\n".join(report.lines()))


class FlenwheelCompareLoras:
    DESCRIPTION = (
        "Renders the same prompts and seeds with several LoRAs or strengths and lays them out in one labelled "
        "grid (columns: LoRA settings, rows: prompt and seed): how to judge character LoRA v2 against v1. "
        "The base model is loaded once; only LoRAs switch."
    )
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("grid", "legend")
    OUTPUT_TOOLTIPS = ("The labelled comparison grid.", "Columns, rows (prompt, seed) and where the grid was saved.")
    FUNCTION = "compare"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "project": PROJECT_INPUT,
                "columns": ("STRING", {"default": "char_v1\nlatest\nbase", "multiline": True, "tooltip":
                            "One column per line: char_v1, char_v2:0.8, 'char_v2:0.6,0.8,1.0' (a sweep), "
                            "'char_v2 + film.safetensors:0.5' (stacked, names from ComfyUI's loras folder), base."}),
                "prompt_ids": ("STRING", {"default": "", "tooltip":
                               "Prompt ids for the rows (comma list; blank: the first prompt of each family)."}),
                **_render_inputs(1),
                "cell_size": ("INT", {"default": 384, "min": 64, "max": 2048, "step": 32,
                                      "tooltip": "Size of each grid cell in pixels."}),
                "save": ("BOOLEAN", {"default": True, "tooltip":
                         "Save the grid and a JSON of every cell under the project's benchmarks/comparisons/."}),
            },
            "optional": _prompt_inputs(),
        }

    def compare(self, flux, project, columns, prompt_ids, variants, base_seed, width, height, steps, guidance,
                cell_size, save, prompts_file="", negative_prompt="", true_cfg=1.0):
        parsed = parse_columns(columns.splitlines(), project, lora_lookup)
        _, plan = _plan(project, prompts_file, "", prompt_ids, variants, base_seed, width, height, steps, guidance,
                        negative_prompt, true_cfg, firsts=not _split(prompt_ids))
        progress = comfy_progress(len(plan) * len(parsed))
        comparison = compare_loras(flux, parsed, plan, cell_size=cell_size, on_cell=progress,
                                   step_callback=lambda step, total: check_interrupt())
        legend = comparison.legend()
        if save:
            legend += f"\nsaved: {save_comparison(comparison, project)}"
        return (images_to_tensor([comparison.grid]), legend)


NODE_CLASS_MAPPINGS = {
    "FlenwheelFluxLoraGenerate": FlenwheelFluxLoraGenerate,
    "FlenwheelCompareLoras": FlenwheelCompareLoras,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelFluxLoraGenerate": "FLENwheel FLUX LoRA Generate",
    "FlenwheelCompareLoras": "FLENwheel Compare LoRAs",
}
