"""FLENwheel Compare LoRAs: the same prompts and seeds with several LoRAs or strengths, in one grid."""

from __future__ import annotations

from ..core.data.images import images_to_tensor
from ..core.data.text_lists import split_list
from ..core.generate.compare import compare_loras, parse_columns, save_comparison
from ._comfy import check_interrupt, comfy_progress
from ._places import checked_loras
from ._prompt_inputs import plan_from_inputs, prompt_inputs, render_inputs
from ._types import CATEGORY, PROJECT_INPUT
from .flux_node import FLUX_INPUT, lora_lookup


class FlenwheelCompareLoras:
    DESCRIPTION = (
        "Renders the same prompts and seeds with several LoRAs or strengths and lays them out in one "
        "labelled "
        "grid (columns: LoRA settings, rows: prompt and seed): how to judge character LoRA v2 against v1. "
        "The base model is loaded once; only LoRAs switch."
    )
    CATEGORY = f"{CATEGORY}/generate"
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("grid", "legend")
    OUTPUT_TOOLTIPS = (
        "The labelled comparison grid.",
        "Columns, rows (prompt, seed) and where the grid was saved.",
    )
    FUNCTION = "compare"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "project": PROJECT_INPUT,
                "columns": (
                    "STRING",
                    {
                        "default": "char_v1\nlatest\nbase",
                        "multiline": True,
                        "tooltip": "One column per line: char_v1, char_v2:0.8, 'char_v2:0.6,0.8,1.0' (a "
                        "sweep), "
                        "'char_v2 + film.safetensors:0.5' (stacked, names from ComfyUI's loras folder), "
                        "base.",
                    },
                ),
                "prompt_ids": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Prompt ids for the rows (comma list; blank: the first prompt of each "
                        "family).",
                    },
                ),
                **render_inputs(1),
                "cell_size": (
                    "INT",
                    {
                        "default": 384,
                        "min": 64,
                        "max": 2048,
                        "step": 32,
                        "tooltip": "Size of each grid cell in pixels.",
                    },
                ),
                "save": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Save the grid and a JSON of every cell under the project's "
                        "benchmarks/comparisons/.",
                    },
                ),
            },
            "optional": prompt_inputs(),
        }

    def compare(
        self,
        flux,
        project,
        columns,
        prompt_ids,
        variants,
        base_seed,
        width,
        height,
        steps,
        guidance,
        cell_size,
        save,
        prompts_file="",
        negative_prompt="",
        true_cfg=1.0,
    ):
        parsed = parse_columns(columns.splitlines(), project, lora_lookup)
        checked_loras(spec.path for column in parsed for spec in column.loras)
        _, plan = plan_from_inputs(
            project,
            prompts_file,
            "",
            prompt_ids,
            variants,
            base_seed,
            width,
            height,
            steps,
            guidance,
            negative_prompt,
            true_cfg,
            firsts=not split_list(prompt_ids),
        )
        progress = comfy_progress(len(plan) * len(parsed))
        comparison = compare_loras(
            flux,
            parsed,
            plan,
            cell_size=cell_size,
            on_cell=progress,
            step_callback=lambda step, total: check_interrupt(),
        )
        legend = comparison.legend()
        if save:
            legend += f"\nsaved: {save_comparison(comparison, project)}"
        return (images_to_tensor([comparison.grid]), legend)


NODE_CLASS_MAPPINGS = {"FlenwheelCompareLoras": FlenwheelCompareLoras}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelCompareLoras": "FLENwheel Compare LoRAs"}
