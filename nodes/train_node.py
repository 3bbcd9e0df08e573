"""FLENwheel Train FLUX LoRA / Train Qwen-Edit LoRA: steps 1.4, 1.8 and 2.2 as subprocess trainers.

Training never runs inside ComfyUI's process: an out-of-memory error or a crash ends the trainer,
not ComfyUI, and all GPU memory comes back when it exits. Re-queueing continues from the newest
checkpoint; a finished version is returned at once without training again.
"""

from __future__ import annotations

from ..core.data.images import images_to_tensor
from ..core.editor.editor_skip import Skipped, skipped_in
from ..core.models.registry import CHARACTER, EDITOR, default_family, family
from ..core.training.planning import prepare_run
from ._places import checked_model, checked_path
from ._training import (
    base_family_input,
    base_model_input,
    base_source,
    common_inputs,
    optional_inputs,
    settings,
    train_node,
)
from ._types import CATEGORY, PROJECT_INPUT

VERSION_TOOLTIP = (
    "latest: continue (or return) the newest version, a new v1 when there is none; "
    "new: prepare the next version; or a version such as v2"
)
OUTPUTS = ("STRING", "IMAGE", "IMAGE", "STRING")
OUTPUT_NAMES = ("lora_path", "loss_plot", "samples", "summary")
OUTPUT_TOOLTIPS = (
    "The LoRA file: the final one, or the newest checkpoint's when training was cancelled.",
    "Loss curve with its moving average and checkpoint marks.",
    "The newest preview images (the loss plot when sampling is off).",
    "What happened, in one line.",
)


class _TrainNode:
    KIND = ""
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS
    FUNCTION = "train"
    OUTPUT_NODE = True
    CATEGORY = f"{CATEGORY}/train"

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        """Always run: the node itself knows when a version is already finished and returns at once."""
        return float("nan")

    def train(self, project, base_model, version, config_path="", dataset=None, wait_for=None, base=None,
              **kwargs):
        """``wait_for`` only orders the graph: ComfyUI runs a node after everything wired into it.
        A skip wired in (Triplet Writer below its min_triplets) passes through without training."""
        skip = skipped_in(dataset, wait_for)
        if skip is not None:
            return _passed_through(skip)
        kind, source = base_source(self.KIND, base, base_model)
        if config_path.strip():
            return train_node(kind, checked_path(config_path, "training config"))
        overrides = {"model": checked_model(source), **settings(kind, kwargs)}
        prompts = [line.strip() for line in (kwargs.get("sample_prompts") or "").splitlines() if line.strip()]
        if prompts:
            overrides["sample_prompts"] = prompts
        plan = prepare_run(project, kind, version, overrides, dataset)
        return train_node(kind, plan.config_path)


def _passed_through(skip: Skipped) -> dict:
    """A skipped training's outputs: no LoRA, the reason as picture and as the summary."""
    picture = images_to_tensor([skip.image()])
    return {"ui": {"text": [skip.text]}, "result": ("", picture, picture, skip.text)}


class FlenwheelTrainFluxLora(_TrainNode):
    KIND = default_family(CHARACTER).name
    DESCRIPTION = (
        "Trains the character LoRA on FLUX.1-dev (steps 1.4 / 1.8) in a separate process: sources + enriched "
        "images reviewed 'good' (+ pristine images from v2 on) into models/flux_lora/char_vN/. "
        "Shows progress, "
        "previews and the loss curve; Cancel saves a checkpoint and returns its LoRA; re-queue resumes."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "base_model": base_model_input(cls.KIND),
                "version": ("STRING", {"default": "latest", "tooltip": VERSION_TOOLTIP}),
                **common_inputs(cls.KIND),
                "sample_prompts": (
                    "STRING",
                    {
                        "default": "\n".join(family(cls.KIND).sample_prompts),
                        "multiline": True,
                        "tooltip": "One preview prompt per line; [trigger] is the token.",
                    },
                ),
            },
            "optional": {
                **optional_inputs(
                    "Train a new version on this dataset (e.g. from Curate Sources or a Review Gate) instead of "
                    "sources + enriched good + pristine; an existing version keeps its frozen training set."
                ),
                "base": base_family_input(cls.KIND),
            },
        }


class FlenwheelTrainQwenEditLora(_TrainNode):
    KIND = default_family(EDITOR).name
    DESCRIPTION = (
        "Trains a Qwen-Image-Edit-2509 LoRA (step 2.2) on the project's correction triplets "
        "(source, edit prompt, corrected target) in a separate process, into models/qwen_lora/vN/. "
        "The source image conditions the edit "
        "as in the 2509 pipeline. Cancel saves a checkpoint and returns its LoRA; re-queue resumes. Wired "
        "after a Triplet Writer that found fewer than its min_triplets, it passes through with 'skipped: ...'."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "base_model": base_model_input(cls.KIND),
                "version": ("STRING", {"default": "latest", "tooltip": VERSION_TOOLTIP}),
                **common_inputs(cls.KIND),
            },
            "optional": {
                **optional_inputs(
                    "Train a new version on this triplets dataset (data/qwen_training/vN) instead of the latest one."
                ),
                "base": base_family_input(cls.KIND),
            },
        }


NODE_CLASS_MAPPINGS = {
    "FlenwheelTrainFluxLora": FlenwheelTrainFluxLora,
    "FlenwheelTrainQwenEditLora": FlenwheelTrainQwenEditLora,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelTrainFluxLora": "FLENwheel Train FLUX LoRA",
    "FlenwheelTrainQwenEditLora": "FLENwheel Train Qwen-Edit LoRA",
}
