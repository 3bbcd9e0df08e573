"""Identity scoring: how close a picture's face is to the character's reference faces.

The references are face encodings of the character's images (the project's sources by default),
cached by content hash under ``<project>/cache/identity/`` so a second run re-encodes nothing.
An image is scored by the Euclidean distance between its face's 128-d encoding and each
reference: the minimum (``distance``, with the ``closest_reference``) decides, the mean over all
references is reported alongside as a steadier figure for comparisons.

- Match: ``distance <= tolerance`` (default 0.50, measured on labelled real photos: see
  ``references``; face_recognition's own 0.6 let look-alikes pass). A project may calibrate its own
  from its sources' spread (``ReferenceSet.calibrated_tolerance``).
- Similarity: ``max(0, 1 - distance / 1.2)``, in [0, 1]: 1 is the same encoding, 0.5 a distance
  of 0.6, 0 a distance of 1.2 or more. It does not depend on the tolerance you pick, so figures
  from runs at different tolerances compare directly.
- Several faces: ``largest`` scores the largest face, ``best`` the closest one, ``reject`` refuses
  the image ("2 faces (policy reject)"). No face: no match, reason "no face".

``reason`` is None exactly when the image matches; otherwise it says why in words a reviewer can
act on ("no face", "2 faces (policy reject)", "distance 0.71 > tolerance 0.60", "unreadable: ...").
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError, ImageLoadError, MissingDependencyError
from ..data.handles import DatasetHandle
from ..data.images import load_image, pil_to_array
from ..data.project import Project
from .face_cache import EncodingCache
from .face_readings import read_faces
from .faces import (
    DetectionSettings,
    Face,
    detect,
    encode,
    find_faces,
    identity_available,
    small_image_note,
    upright_rgb,
)
from .references import (
    DEFAULT_TOLERANCE,
    Reference,
    ReferenceSet,
    ToleranceCalibration,
    dataset_references,
    face_outliers,
    image_references,
    path_references,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "POLICIES",
    "DetectionSettings",
    "Face",
    "IdentityScore",
    "IdentityScorer",
    "MissingDependencyError",
    "Reference",
    "ReferenceSet",
    "ToleranceCalibration",
    "face_outliers",
    "find_faces",
    "identity_available",
    "similarity",
]

POLICIES = ("largest", "best", "reject")
SIMILARITY_SCALE = 1.2


def similarity(distance: float) -> float:
    """The documented distance-to-similarity map (see the module docstring)."""
    return round(max(0.0, 1.0 - distance / SIMILARITY_SCALE), 4)


@dataclass(frozen=True)
class IdentityScore:
    """One image's identity verdict; ``to_json`` is what records store under ``scores["identity"]``."""

    distance: float | None
    mean_distance: float | None
    closest_reference: str | None
    face_count: int
    tolerance: float
    policy: str
    problem: str | None = None
    box: tuple[int, int, int, int] | None = None
    note: str | None = None
    detector: str | None = None
    references: str | None = None
    reference_count: int = 0
    #: what the instruments read on the same faces (``FaceReadings.to_json``) when the scorer was asked to
    #: read them; stored beside the score as ``scores["instruments"]``, not inside it
    instruments: dict[str, Any] | None = None

    @property
    def match(self) -> bool:
        return self.problem is None and self.distance is not None and self.distance <= self.tolerance

    @property
    def similarity(self) -> float | None:
        return None if self.distance is None else similarity(self.distance)

    @property
    def reason(self) -> str | None:
        if self.problem:
            return self.problem
        if self.match or self.distance is None:
            return None
        return f"distance {self.distance:.2f} > tolerance {self.tolerance:.2f}"

    @property
    def verdict(self) -> str:
        """One word for grouping: match, mismatch, no_face, multiple_faces or unreadable."""
        if self.match:
            return "match"
        if self.problem is None:
            return "mismatch"
        if self.problem.startswith("unreadable"):
            return "unreadable"
        return "no_face" if self.face_count == 0 else "multiple_faces"

    def with_tolerance(self, tolerance: float) -> IdentityScore:
        """The same measurement judged at another tolerance (no re-encoding needed)."""
        return replace(self, tolerance=tolerance)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("problem")
        data.pop("instruments")
        data["box"] = list(self.box) if self.box else None
        data.update(similarity=self.similarity, match=self.match, reason=self.reason, verdict=self.verdict)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentityScore:
        """Rebuild a stored score (``problem`` is the stored reason of a score without a distance)."""
        box = data.get("box")
        return cls(
            distance=data.get("distance"),
            mean_distance=data.get("mean_distance"),
            closest_reference=data.get("closest_reference"),
            face_count=int(data.get("face_count", 0)),
            tolerance=float(data.get("tolerance", DEFAULT_TOLERANCE)),
            policy=data.get("policy", "largest"),
            problem=None if data.get("distance") is not None else data.get("reason") or "no face",
            box=tuple(box) if box else None,
            note=data.get("note"),
            detector=data.get("detector"),
            references=data.get("references"),
            reference_count=int(data.get("reference_count", 0)),
        )


class IdentityScorer:
    """Scores images against a reference set; build it with one of the ``from_*`` constructors.

    References that look like a different person than the rest (``ReferenceSet.without_outliers``)
    are left out, unless ``drop_outliers`` is False.
    """

    def __init__(
        self,
        references: ReferenceSet,
        tolerance: float = DEFAULT_TOLERANCE,
        policy: str = "largest",
        drop_outliers: bool = True,
    ) -> None:
        if policy not in POLICIES:
            raise FlenwheelError(f"unknown multi-face policy '{policy}'; use one of {', '.join(POLICIES)}")
        if not 0.0 < tolerance <= 2.0:
            raise FlenwheelError(f"tolerance must be in (0, 2], got {tolerance} ({DEFAULT_TOLERANCE} is the default)")
        if drop_outliers:
            references = references.without_outliers()
        if not references.references and not references.skipped:
            raise FlenwheelError(
                "no reference images were given (is the source dataset empty? add photos with: "
                "flenwheel source add PROJECT PHOTOS...)"
            )
        if not references.references:
            listed = "; ".join(f"{name}: {why}" for name, why in references.skipped.items())
            raise FlenwheelError(
                f"no reference image has a usable face ({listed}); give photos where the face is "
                "clearly visible"
            )
        self.references = references
        self.settings = references.settings
        self.tolerance = tolerance
        self.policy = policy
        self._matrix = references.matrix
        self.instruments = False

    def reading_instruments(self) -> IdentityScorer:
        """A copy that also reads each image's view and expression from the faces it finds (``score``),
        so the images a filter keeps count as measured in the loop's coverage."""
        scorer = copy.copy(self)
        scorer.instruments = True
        return scorer

    # Construction -----------------------------------------------------------------------
    @classmethod
    def from_project(
        cls,
        project: Project,
        version: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        policy: str = "largest",
        detect_side: int = 512,
        model: str = "auto",
        upsample: int = 1,
    ) -> IdentityScorer:
        """References = the project's source images (latest version unless named), cached in the project."""
        return cls.from_dataset(
            project.dataset("source", version), tolerance, policy, detect_side, model, upsample
        )

    @classmethod
    def from_dataset(
        cls,
        dataset: DatasetVersion | DatasetHandle,
        tolerance: float = DEFAULT_TOLERANCE,
        policy: str = "largest",
        detect_side: int = 512,
        model: str = "auto",
        upsample: int = 1,
    ) -> IdentityScorer:
        """References = a dataset version (or handle subset); images rejected in review are left out."""
        return cls(
            dataset_references(dataset, DetectionSettings(detect_side, model, upsample)), tolerance, policy
        )

    @classmethod
    def from_images(
        cls,
        images: Sequence[Image.Image],
        names: Sequence[str] | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        policy: str = "largest",
        detect_side: int = 512,
        model: str = "auto",
        upsample: int = 1,
        cache_dir: Path | None = None,
    ) -> IdentityScorer:
        """References = pictures in memory (e.g. an IMAGE batch); cached only when ``cache_dir`` is given."""
        settings = DetectionSettings(detect_side, model, upsample)
        return cls(image_references(images, names, settings, EncodingCache(cache_dir)), tolerance, policy)

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | Path],
        tolerance: float = DEFAULT_TOLERANCE,
        policy: str = "largest",
        detect_side: int = 512,
        model: str = "auto",
        upsample: int = 1,
        cache_dir: Path | None = None,
    ) -> IdentityScorer:
        """References = image files; an unreadable one is listed in ``references.skipped``."""
        settings = DetectionSettings(detect_side, model, upsample)
        return cls(path_references(paths, settings, EncodingCache(cache_dir)), tolerance, policy)

    # Scoring ----------------------------------------------------------------------------
    def _result(self, face_count: int, **fields: Any) -> IdentityScore:
        return IdentityScore(
            face_count=face_count,
            tolerance=self.tolerance,
            policy=self.policy,
            detector=self.settings.tag,
            references=self.references.fingerprint,
            reference_count=len(self.references.references),
            **{"distance": None, "mean_distance": None, "closest_reference": None, **fields},
        )

    def score(self, image: Image.Image) -> IdentityScore:
        """Find the faces, apply the policy, and measure the chosen face against every reference.

        With ``instruments`` the faces come from ``read_faces`` (the same detector, so the same boxes),
        whose readings ride along on the score."""
        upright = upright_rgb(image)
        if not self.instruments:
            return self._score_boxes(upright, detect(upright, self.settings))
        readings = read_faces(upright, self.settings)
        boxes = [face.box for face in readings.faces] if readings.searched else detect(upright, self.settings)
        return replace(self._score_boxes(upright, boxes), instruments=readings.to_json())

    def _score_boxes(self, upright: Image.Image, boxes: list[tuple[int, int, int, int]]) -> IdentityScore:
        if not boxes:
            return self._result(0, problem="no face", note=small_image_note(upright, self.settings))
        if len(boxes) > 1 and self.policy == "reject":
            return self._result(len(boxes), problem=f"{len(boxes)} faces (policy reject)")
        candidates = boxes[:1] if self.policy == "largest" else boxes
        faces = [
            Face(box, encoding=code)
            for box, code in zip(candidates, encode(pil_to_array(upright), candidates), strict=True)
        ]
        return self.score_faces(faces, face_count=len(boxes))

    def score_faces(self, faces: Sequence[Face], face_count: int | None = None) -> IdentityScore:
        """Measure already encoded faces (the closest wins), e.g. ones a caller found with ``find_faces``."""
        if not faces:
            return self._result(0, problem="no face")
        distances = [np.linalg.norm(self._matrix - face.encoding, axis=1) for face in faces]
        best = min(range(len(faces)), key=lambda i: float(distances[i].min()))
        chosen = distances[best]
        closest = int(np.argmin(chosen))
        return self._result(
            len(faces) if face_count is None else face_count,
            distance=round(float(chosen[closest]), 4),
            mean_distance=round(float(chosen.mean()), 4),
            closest_reference=self.references.references[closest].name,
            box=faces[best].box,
        )

    def unreadable(self, problem: str) -> IdentityScore:
        """The score row of a file that could not be decoded (a row with a reason, not a crash)."""
        return self._result(0, problem=f"unreadable: {problem}")

    def score_path(self, path: str | Path) -> IdentityScore:
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            return self.unreadable(exc.problem)
        return self.score(image)
