"""Prompt and render inputs shared by the generating nodes, and the plan they describe."""

from __future__ import annotations

from ..core.data.text_lists import split_list
from ..core.generate.aim import AimedPlan, aimed_plan, load_needs
from ..core.generate.prompt_sets import plan_run
from ._places import user_files

SEED_MAX = 2**31 - 1


def split_or_none(text: str) -> list[str] | None:
    return split_list(text) or None


def _size(default: int, what: str) -> tuple[str, dict]:
    return (
        "INT",
        {"default": default, "min": 64, "max": 4096, "step": 16, "tooltip": f"Image {what} in pixels."},
    )


def render_inputs(variants: int) -> dict[str, tuple]:
    return {
        "variants": (
            "INT",
            {
                "default": variants,
                "min": 1,
                "max": 64,
                "tooltip": "Images per prompt, each with its own recorded seed.",
            },
        ),
        "base_seed": (
            "INT",
            {
                "default": 0,
                "min": 0,
                "max": SEED_MAX,
                "tooltip": "Run seed: each image's seed derives from it, the prompt id and the variant "
                "(same seeds "
                "for every LoRA, so runs compare and resume).",
            },
        ),
        "width": _size(1024, "width"),
        "height": _size(1024, "height"),
        "steps": (
            "INT",
            {"default": 28, "min": 1, "max": 200, "tooltip": "Denoising steps (28 for FLUX.1-dev)."},
        ),
        "guidance": (
            "FLOAT",
            {
                "default": 3.5,
                "min": 0.0,
                "max": 30.0,
                "step": 0.1,
                "tooltip": "FLUX distilled guidance (3.5 typical).",
            },
        ),
    }


def prompt_inputs() -> dict[str, tuple]:
    return {
        "prompts_file": (
            "STRING",
            {
                "default": "",
                "tooltip": "YAML file extending the built-in prompts (blank: built-in only); see "
                "docs/generate.md.",
            },
        ),
        "negative_prompt": (
            "STRING",
            {
                "default": "",
                "multiline": True,
                "tooltip": "Negative prompt for prompts without their own; acts only with true_cfg > 1.",
            },
        ),
        "true_cfg": (
            "FLOAT",
            {
                "default": 1.0,
                "min": 1.0,
                "max": 30.0,
                "step": 0.1,
                "tooltip": "True CFG scale; above 1 the negative prompt is used and each image takes "
                "twice as long.",
            },
        ),
    }


def plan_from_inputs(
    project,
    prompts_file,
    families,
    prompt_ids,
    variants,
    base_seed,
    width,
    height,
    steps,
    guidance,
    negative_prompt,
    true_cfg,
    firsts=False,
):
    files = list(user_files(prompts_file, "prompts file"))
    run = {
        "width": width,
        "height": height,
        "steps": steps,
        "guidance": guidance,
        "true_cfg": true_cfg,
        "negative_prompt": negative_prompt.strip() or None,
    }
    return plan_run(
        project,
        files,
        families=split_or_none(families),
        ids=split_or_none(prompt_ids),
        variants=variants,
        base_seed=base_seed,
        run_settings=run,
        first_of_each_family=firsts,
    )


def aimed_from_inputs(project, handle, prompts_file, families, prompt_ids, variants, base_seed, width, height,
                      steps, guidance, negative_prompt, true_cfg) -> AimedPlan:
    """The generate node's plan, aimed (as ``flenwheel generate``) by the newest card up to the handle's
    character LoRA and that LoRA's training set."""
    from ..core.models.character_lora import lora_version_of

    version = next((v for spec in handle.lora_specs if (v := lora_version_of(spec.path))), None)
    run = {"width": width, "height": height, "steps": steps, "guidance": guidance, "true_cfg": true_cfg,
           "negative_prompt": negative_prompt.strip() or None}
    files = [prompts_file.strip()] if prompts_file.strip() else []
    return aimed_plan(project, load_needs(project, version), files, families=split_or_none(families),
                      ids=split_or_none(prompt_ids), variants=variants, base_seed=base_seed, run_settings=run)
