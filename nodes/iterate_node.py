"""FLENwheel Iterate: step 1.8, prepare the next FLUX LoRA version from everything reviewed so far."""

from __future__ import annotations

from ..core.models.registry import CHARACTER, default_family
from ..core.training.planning import iterate
from ._training import base_model_input
from ._types import CATEGORY, PROJECT_INPUT


class FlenwheelIterate:
    DESCRIPTION = (
        "Step 1.8: builds the next FLUX LoRA version's training set from the sources, the enriched images "
        "reviewed 'good' and the pristine synthetic images (with lineage), and writes its config. Feed the "
        "summary to your notes, then train it with FLENwheel Train FLUX LoRA (version 'latest')."
    )
    CATEGORY = f"{CATEGORY}/train"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("config_path", "summary")
    OUTPUT_TOOLTIPS = ("The new version's config.yaml.", "Version and image counts by origin.")
    FUNCTION = "iterate"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "base_model": base_model_input(default_family(CHARACTER).name),
            }
        }

    def iterate(self, project, base_model):
        plan = iterate(project, {"model": base_model.strip() or None})
        return (str(plan.config_path), plan.describe())


NODE_CLASS_MAPPINGS = {"FlenwheelIterate": FlenwheelIterate}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelIterate": "FLENwheel Iterate (next LoRA version)"}
