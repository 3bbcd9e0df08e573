"""FLENwheel Curate Sources: step 1.1 in a graph (photos in, checked and captioned sources out)."""

from __future__ import annotations

from ..core.curate.curation import add_sources, check_sources
from ..core.curate.face_checks import source_checks
from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor, tensor_to_images
from ..core.data.taxonomy import ANGLES, EXPRESSIONS
from ._comfy import comfy_progress
from ._places import user_files
from ._types import CATEGORY, DATASET, PROJECT_INPUT


class FlenwheelCurateSources:
    DESCRIPTION = (
        "Step 1.1: copies photos (a folder and/or an IMAGE batch) into the project's source dataset, "
        "upright, RGB and 8-bit, with quality checks and captions that carry the instance token. "
        "The report lists the seed's criteria: 10+ usable images, 2+ angles, all captioned."
    )
    CATEGORY = f"{CATEGORY}/curate"
    RETURN_TYPES = (DATASET, "IMAGE", "STRING")
    RETURN_NAMES = ("dataset", "images", "report")
    OUTPUT_TOOLTIPS = ("Handle to the source dataset.", "The dataset's images.", "Step 1.1 criteria, pass/fail.")
    FUNCTION = "curate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "source_folder": ("STRING", {"default": "", "tooltip": "Folder of photos to add (blank: none)."}),
                "angle": (list(ANGLES), {"default": "unknown", "tooltip": "View of the face in these photos."}),
                "expression": (list(EXPRESSIONS), {"default": "unknown", "tooltip": "Expression in these photos."}),
                "caption": ("STRING", {"default": "",
                                       "tooltip": "Caption with the token or [trigger]; blank builds one."}),
                "mirror": ("BOOLEAN", {"default": False, "tooltip": "Also add left-right flips (views swapped)."}),
                "skip_invalid": ("BOOLEAN", {
                    "default": False, "tooltip": "Add readable photos and skip broken ones instead of adding none.",
                }),
            },
            "optional": {
                "images": ("IMAGE", {"tooltip": "Photos from other nodes (e.g. Load Image), added like files."}),
            },
        }

    def curate(self, project, source_folder, angle, expression, caption, mirror, skip_invalid, images=None):
        pictures = [] if images is None else [(f"comfy_{i:03d}", im) for i, im in enumerate(tensor_to_images(images))]
        inputs = list(user_files(source_folder, "source folder"))
        checks, notice = source_checks(project)
        if inputs or pictures:
            progress = comfy_progress(len(pictures) or 1)
            count = 0

            def advance(record):
                nonlocal count
                count += 1
                progress(count, max(count, len(pictures)), None)

            add_sources(project, inputs, pictures, caption=caption.strip() or None, angle=angle,
                        expression=expression, mirror=mirror, skip_invalid=skip_invalid, checks=checks,
                        on_image=advance)
        report = check_sources(project, checks=checks)
        handle = DatasetHandle(project.dataset("source"))
        lines = [f"sources {report.dataset}"] + [
            c.line() for c in report.criteria
        ] + [f"not usable: {name}: {'; '.join(r)}" for name, r in report.problems.items()]
        lines += [notice] if notice else []
        return (handle, images_to_tensor(handle.load_images()), "\n".join(lines))


NODE_CLASS_MAPPINGS = {"FlenwheelCurateSources": FlenwheelCurateSources}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelCurateSources": "FLENwheel Curate Sources"}
