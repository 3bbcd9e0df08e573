"""Reference faces: the encodings an identity scorer compares against, and where they come from.

A reference set is built from a dataset version (the project's sources, cached in the project),
from image files or from pictures in memory, and keeps the largest face of each reference image.
Images without a face, unreadable files and identity outliers (a different person in the set) are
left out and listed in ``skipped``, so a report can say exactly what the scores were measured against.

The default tolerance and the calibration rule are measured on labelled real photos
(``benchmarks/identity_separation.py``, table in docs/identity.md): 0.50 makes the fewest errors of both
kinds on 222 faces of 59 named people plus strangers: 10% of photos missed against their person's 1-4
other photos (3.6% with 3 or more) and 2.3% accepted by the most similar other person, where
face_recognition's own 0.6 missed 0.8% but let that look-alike pass for 51% of the photos.
``ReferenceSet.calibrated_tolerance`` sets a project's own from its sources' spread instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError, ImageLoadError
from ..data.handles import DatasetHandle
from ..data.images import load_image, pixel_hash
from .face_cache import EncodingCache
from .faces import DetectionSettings, Face

#: Default match limit on the face_recognition distance (see the module docstring for the measurement).
DEFAULT_TOLERANCE = 0.5
#: A reference whose median distance to the others is over this is a different person: same-person pairs
#: of the labelled photos reach 0.66, so the strict match tolerance would call genuine references strangers.
OUTLIER_DISTANCE = 0.6
MIN_FOR_OUTLIERS = 3
#: A calibrated tolerance stays in this range: below it genuine new views are missed (a quarter of the
#: labelled photos at 0.45), above it look-alikes pass (0.6: 51% of photos accepted by the nearest stranger).
CALIBRATION_RANGE = (0.45, 0.6)
#: ``limits.identity_model`` value that means face_recognition's 128-d encoder (else an ArcFace ONNX file).
IDENTITY_MODEL_DEFAULT = "face_recognition"
#: Cosine-distance limit for ArcFace embeddings: deepface's threshold for insightface buffalo_l (not measured here).
ARCFACE_TOLERANCE = 0.55


@dataclass(frozen=True)
class Reference:
    name: str
    image_id: str
    encoding: np.ndarray = field(repr=False)


def _median_to_others(matrix: np.ndarray) -> np.ndarray:
    distances = np.linalg.norm(matrix[:, None, :] - matrix[None, :, :], axis=2)
    count = len(matrix)
    others = distances[~np.eye(count, dtype=bool)].reshape(count, count - 1)
    return np.median(others, axis=1)


def face_outliers(encodings: Sequence[np.ndarray], tolerance: float = OUTLIER_DISTANCE) -> dict[int, float]:
    """Faces whose median distance to the others exceeds ``tolerance``: a different person in the set.

    Needs at least three faces (with two, nobody can say which one is the stranger). The result
    maps index to median distance; when half or more of the faces qualify, the set has no clear
    majority and every one of them is returned (the caller must not pick a side).
    """
    if len(encodings) < MIN_FOR_OUTLIERS:
        return {}
    medians = _median_to_others(np.stack(encodings))
    return {i: round(float(m), 4) for i, m in enumerate(medians) if m > tolerance}


@dataclass(frozen=True)
class ToleranceCalibration:
    """A tolerance and where it came from: ``default`` or ``sources`` (their spread, as measured)."""

    value: float
    source: str
    references: int
    widest_nearest: float | None
    median_nearest: float | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "from": self.source, "references": self.references,
                "widest_nearest_distance": self.widest_nearest, "median_nearest_distance": self.median_nearest,
                "note": self.note}


@dataclass
class ReferenceSet:
    """The encodings a scorer compares against, with what was left out and why."""

    settings: DetectionSettings
    references: list[Reference] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    encoded: int = 0
    cached: int = 0

    @property
    def fingerprint(self) -> str:
        """Names this exact reference set and detector, so stored scores can be reused safely."""
        digest = hashlib.sha256(self.settings.tag.encode())
        for image_id in sorted(ref.image_id for ref in self.references):
            digest.update(image_id.encode())
        return digest.hexdigest()[:16]

    @property
    def matrix(self) -> np.ndarray:
        return np.stack([ref.encoding for ref in self.references])

    def without_outliers(self, tolerance: float = OUTLIER_DISTANCE) -> ReferenceSet:
        """Drop references that look like another person, unless no clear majority exists (then warn).

        ``tolerance`` is the same-person limit, not a scorer's (stricter) filtering tolerance: a strict
        filter must not make every reference look like a stranger.
        """
        outliers = face_outliers([ref.encoding for ref in self.references], tolerance)
        if not outliers:
            return self
        if 2 * len(outliers) >= len(self.references):
            self.warnings.append(
                f"the {len(self.references)} references do not agree on one face ({len(outliers)} differ "
                "from the rest); check the sources with: flenwheel source check"
            )
            return self
        kept = [ref for i, ref in enumerate(self.references) if i not in outliers]
        skipped = dict(self.skipped)
        for i, median in outliers.items():
            skipped[self.references[i].name] = (
                f"identity outlier (median distance {median:.2f} to the others)"
            )
        return replace(self, references=kept, skipped=skipped)

    def calibrated_tolerance(self) -> ToleranceCalibration:
        """The tolerance this character's own sources support: the largest distance from a source to its
        nearest other source, within ``CALIBRATION_RANGE``.

        That leave-one-out distance is exactly what the check measures for a new genuine picture (its
        distance to the closest reference), so every source would pass against the others; a tight set of
        sources gets a strict limit that look-alikes do not reach, a varied one a looser limit. With fewer
        than three references the spread says nothing and the default is kept.
        """
        count = len(self.references)
        if count < MIN_FOR_OUTLIERS:
            return ToleranceCalibration(DEFAULT_TOLERANCE, "default", count, None, None,
                                        f"{count} usable references, fewer than {MIN_FOR_OUTLIERS}: default kept")
        distances = np.linalg.norm(self.matrix[:, None, :] - self.matrix[None, :, :], axis=2)
        np.fill_diagonal(distances, np.inf)
        nearest = distances.min(axis=1)
        widest, median = round(float(nearest.max()), 4), round(float(np.median(nearest)), 4)
        low, high = CALIBRATION_RANGE
        value = round(min(high, max(low, float(np.ceil(widest * 100) / 100))), 2)
        note = f"largest distance from a source to its nearest other source {widest:.3f} -> {value:.2f}"
        if value != round(float(np.ceil(widest * 100) / 100), 2):
            note += f" (kept within {low:.2f}-{high:.2f})"
        return ToleranceCalibration(value, "sources", count, widest, median, note)

    def add_image(self, name: str, image_id: str, faces: list[Face]) -> None:
        """Use the largest face of a reference image; a face-less one is listed in ``skipped``."""
        if not faces:
            self.skipped[name] = "no face"
            return
        if len(faces) > 1:
            self.warnings.append(f"{name} shows {len(faces)} faces; the largest is used as reference")
        self.references.append(Reference(name, image_id, faces[0].encoding))

    @classmethod
    def merge(cls, sets: Sequence[ReferenceSet]) -> ReferenceSet:
        """One set from several (a dataset, some files, an IMAGE batch); all must share detection settings."""
        if not sets:
            raise FlenwheelError("no references given")
        if len({refs.settings for refs in sets}) > 1:
            raise FlenwheelError("reference sets built with different detection settings cannot be merged")
        merged = cls(sets[0].settings)
        for refs in sets:
            merged.references += refs.references
            merged.skipped.update(refs.skipped)
            merged.warnings += refs.warnings
            merged.encoded += refs.encoded
            merged.cached += refs.cached
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "count": len(self.references),
            "names": [ref.name for ref in self.references],
            "skipped": self.skipped,
            "warnings": self.warnings,
            "fingerprint": self.fingerprint if self.references else None,
            "encoded": self.encoded,
            "cached": self.cached,
        }


def dataset_references(dataset: DatasetVersion | DatasetHandle, settings: DetectionSettings) -> ReferenceSet:
    version = dataset.dataset if isinstance(dataset, DatasetHandle) else dataset
    records = dataset.records() if isinstance(dataset, DatasetHandle) else dataset.records
    cache = EncodingCache(version.project.cache_dir / "identity")
    refs = ReferenceSet(settings)
    for record in records:
        if record.label == "rejected":
            refs.skipped[record.filename] = "rejected in review"
            continue
        path = version.image_path(record)
        try:
            faces = cache.faces(record.id, settings, lambda p=path: load_image(p))
        except ImageLoadError as exc:
            refs.skipped[record.filename] = f"unreadable: {exc.problem}"
            continue
        refs.add_image(record.filename, record.id, faces)
    refs.encoded, refs.cached = cache.misses, cache.hits
    return refs


def image_references(
    images: Sequence[Image.Image],
    names: Sequence[str] | None,
    settings: DetectionSettings,
    cache: EncodingCache,
) -> ReferenceSet:
    names = list(names) if names is not None else [f"reference_{i}" for i in range(len(images))]
    if len(names) != len(images):
        raise FlenwheelError(f"{len(images)} reference images but {len(names)} names")
    refs = ReferenceSet(settings)
    for name, image in zip(names, images, strict=True):
        image_id = pixel_hash(image)
        refs.add_image(name, image_id, cache.faces(image_id, settings, lambda im=image: im))
    refs.encoded, refs.cached = cache.misses, cache.hits
    return refs


def path_references(
    paths: Sequence[str | Path], settings: DetectionSettings, cache: EncodingCache
) -> ReferenceSet:
    refs = ReferenceSet(settings)
    for path in paths:
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            refs.skipped[str(path)] = f"unreadable: {exc.problem}"
            continue
        image_id = pixel_hash(image)
        refs.add_image(str(path), image_id, cache.faces(image_id, settings, lambda im=image: im))
    refs.encoded, refs.cached = cache.misses, cache.hits
    return refs


def collect_references(
    settings: DetectionSettings,
    datasets: Sequence[DatasetVersion | DatasetHandle] = (),
    images: Sequence[Image.Image] = (),
    paths: Sequence[str | Path] = (),
    cache_dir: Path | None = None,
) -> ReferenceSet:
    """One reference set from every kind of input given (datasets, pictures in memory, files)."""
    cache = EncodingCache(cache_dir)
    sets = [dataset_references(dataset, settings) for dataset in datasets]
    if images:
        sets.append(image_references(images, None, settings, cache))
    if paths:
        sets.append(path_references(paths, settings, cache))
    return ReferenceSet.merge(sets)
