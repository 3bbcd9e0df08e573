"""FLENwheel Load Dataset: a dataset version as an IMAGE batch plus a handle carrying its records."""

from __future__ import annotations

from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor
from ..core.data.records import STAGES
from ._types import CATEGORY, DATASET, PROJECT_INPUT, VERSION_INPUT, version_or_none


class FlenwheelLoadDataset:
    DESCRIPTION = (
        "Loads one dataset version of the project (sources, enriched, synthetic, pristine) as an IMAGE "
        "batch and a dataset handle whose records carry captions and lineage. Mixed sizes are padded."
    )
    CATEGORY = f"{CATEGORY}/dataset"
    RETURN_TYPES = ("IMAGE", DATASET, "STRING")
    RETURN_NAMES = ("images", "dataset", "captions")
    OUTPUT_TOOLTIPS = ("All images as one batch.", "Handle to the dataset version.", "Captions, one per line.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "stage": (list(STAGES[:4]), {"default": "source", "tooltip": "Which stage's dataset to load."}),
                "version": VERSION_INPUT,
                "batch_policy": (["pad", "crop", "stretch"], {
                    "default": "pad",
                    "tooltip": "How mixed sizes become one batch: letterbox, centre-crop or stretch to the largest.",
                }),
            },
            "optional": {
                "label": ("STRING", {"default": "", "tooltip": "Only records with this review label (blank: all)."}),
            },
        }

    def load(self, project, stage, version, batch_policy, label=""):
        handle = DatasetHandle(project.dataset(stage, version_or_none(version)))
        if label.strip():
            handle = handle.subset([r.id for r in handle.records() if r.label == label.strip()])
        images = handle.load_images()
        if not images:
            raise ValueError(f"{handle.describe()}: nothing to load")
        captions = "\n".join(record.caption or record.prompt or "" for record in handle.records())
        return (images_to_tensor(images, batch_policy), handle, captions)


NODE_CLASS_MAPPINGS = {"FlenwheelLoadDataset": FlenwheelLoadDataset}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelLoadDataset": "FLENwheel Load Dataset"}
