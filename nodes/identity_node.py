"""FLENwheel Face Identity Filter: step 1.6 in a graph (keep the images that show the character)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.data.availability import missing_note, require
from ..core.data.errors import FlenwheelError
from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor, list_image_files, tensor_to_images
from ..core.identity.faces import DETECTOR_CHOICES, DetectionSettings
from ..core.identity.filter import filter_dataset, import_synthetic, score_images
from ..core.identity.identity import DEFAULT_TOLERANCE, POLICIES, IdentityScorer
from ..core.identity.references import collect_references
from ._comfy import blocked_output, comfy_progress
from ._places import checked_path
from ._types import CATEGORY, DATASET, PROJECT


def _batch(images):
    """An IMAGE batch, or a blocker when empty (nodes downstream then skip instead of failing)."""
    return images_to_tensor(images) if images else blocked_output()


def _reference_folder(folder: str) -> list[Path]:
    path = checked_path(folder, "reference folder", read_only=True)
    if not path.is_dir():
        raise FlenwheelError(f"reference folder {path} does not exist")
    files = list_image_files(path)
    if not files:
        raise FlenwheelError(f"reference folder {path} contains no image files")
    return files


class FlenwheelFaceIdentityFilter:
    DESCRIPTION = (
        "Step 1.6: scores every image's face against the character's reference faces (face_recognition, "
        "128-d encodings) and splits the images into passed and rejected. With a project or a dataset, "
        "passed images are copied to data/synthetic/vN/filtered/ and every record keeps its score and "
        "reason. "
        "References default to the project's sources. Similarity = max(0, 1 - distance / 1.2)."
    ) + missing_note("face_recognition")
    CATEGORY = f"{CATEGORY}/identity"
    RETURN_TYPES = ("IMAGE", "IMAGE", "STRING", DATASET)
    RETURN_NAMES = ("passed", "rejected", "scores", "passed_dataset")
    OUTPUT_TOOLTIPS = (
        "Images whose face matches the references.",
        "Images with no face, a rejected face count, or a face too far from the references.",
        "Per-image scores as JSON (distance, similarity, match, face_count, reason...).",
        "Handle to the passed records (only when a project or dataset was connected).",
    )
    FUNCTION = "filter"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "tolerance": (
                    "FLOAT",
                    {
                        "default": DEFAULT_TOLERANCE,
                        "min": 0.05,
                        "max": 1.5,
                        "step": 0.01,
                        "tooltip": "Match when the face distance is at or under this; the default 0.5 is "
                        "measured on labelled photos (0.6, face_recognition's own, lets look-alikes "
                        "pass); lower is stricter.",
                    },
                ),
                "policy": (
                    list(POLICIES),
                    {
                        "default": "largest",
                        "tooltip": "With several faces: score the largest, the best match, "
                        "or reject the image.",
                    },
                ),
                "detect_side": (
                    "INT",
                    {
                        "default": 512,
                        "min": 0,
                        "max": 4096,
                        "step": 64,
                        "tooltip": "Find faces on a copy this long (faster); 0 = full size. "
                        "Encodings always use full resolution.",
                    },
                ),
                "detector": (
                    list(DETECTOR_CHOICES),
                    {
                        "default": "auto",
                        "tooltip": "auto: mediapipe where installed, else hog. mediapipe: BlazeFace, finds front, "
                        "half and profile faces in a few ms. hog: misses most profiles. cnn: finds turned faces "
                        "but takes ~6 s and 1.3 GB per 512 px image on CPU.",
                    },
                ),
            },
            "optional": {
                "images": (
                    "IMAGE",
                    {
                        "tooltip": "Images to filter (e.g. from your own FLUX workflow). With a "
                        "project they are stored in data/synthetic/vN/ first."
                    },
                ),
                "dataset": (DATASET, {"tooltip": "A dataset handle to filter (e.g. a synthetic version)."}),
                "project": (
                    PROJECT,
                    {
                        "tooltip": "The character project: its sources are the default "
                        "references and it receives filtered images."
                    },
                ),
                "reference_dataset": (
                    DATASET,
                    {"tooltip": "Reference faces from a dataset (default: sources)."},
                ),
                "reference_images": ("IMAGE", {"tooltip": "Reference faces as an IMAGE batch."}),
                "reference_folder": ("STRING", {"default": "", "tooltip": "Folder of reference photos."}),
                "rescore": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Measure again instead of reusing distances stored in records.",
                    },
                ),
            },
        }

    def filter(
        self,
        tolerance,
        policy,
        detect_side,
        detector,
        images=None,
        dataset=None,
        project=None,
        reference_dataset=None,
        reference_images=None,
        reference_folder="",
        rescore=False,
    ):
        require("face_recognition", "FLENwheel Face Identity Filter")
        if (images is None) == (dataset is None):
            raise FlenwheelError("connect exactly one of 'images' or 'dataset' to filter")
        project = project or (dataset.dataset.project if dataset is not None else None)
        scorer = self._scorer(
            tolerance,
            policy,
            DetectionSettings(detect_side, detector),
            project,
            reference_dataset,
            reference_images,
            reference_folder,
        )
        if dataset is None and project is not None:
            dataset = import_synthetic(project, tensor_to_images(images))
        if dataset is None:
            return self._filter_batch(tensor_to_images(images), scorer)
        return self._filter_dataset(dataset, scorer, rescore)

    @staticmethod
    def _scorer(tolerance, policy, settings, project, reference_dataset, reference_images, reference_folder):
        datasets = [reference_dataset] if reference_dataset is not None else []
        pictures = tensor_to_images(reference_images) if reference_images is not None else []
        paths = _reference_folder(reference_folder) if reference_folder.strip() else []
        if not (datasets or pictures or paths):
            if project is None:
                raise FlenwheelError(
                    "no references: connect a project, reference_dataset, reference_images "
                    "or set reference_folder"
                )
            datasets = [project.dataset("source")]
        cache = project.cache_dir / "identity" if project is not None else None
        refs = collect_references(settings, datasets, pictures, paths, cache)
        return IdentityScorer(refs, tolerance, policy)

    @staticmethod
    def _filter_batch(pictures, scorer):
        scores = score_images(pictures, scorer, comfy_progress(len(pictures)))
        rows = [{"index": i, **score.to_json()} for i, score in enumerate(scores)]
        report = {
            "references": scorer.references.to_json(),
            "images": rows,
            "kept": sum(s.match for s in scores),
            "removed": sum(not s.match for s in scores),
        }
        passed = [p for p, s in zip(pictures, scores, strict=True) if s.match]
        rejected = [p for p, s in zip(pictures, scores, strict=True) if not s.match]
        return (_batch(passed), _batch(rejected), json.dumps(report, indent=2), blocked_output())

    @staticmethod
    def _filter_dataset(handle: DatasetHandle, scorer, rescore):
        report = filter_dataset(
            handle.dataset, scorer, handle.ids, rescore, progress=comfy_progress(len(handle))
        )
        passed = handle.subset([o.record_id for o in report.kept])
        rejected = handle.subset([o.record_id for o in report.removed])
        return (
            _batch(passed.load_images()),
            _batch(rejected.load_images()),
            json.dumps(report.to_json(), indent=2),
            passed,
        )


NODE_CLASS_MAPPINGS = {"FlenwheelFaceIdentityFilter": FlenwheelFaceIdentityFilter}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelFaceIdentityFilter": "FLENwheel Face Identity Filter"}
