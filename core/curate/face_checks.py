"""Face checks for source curation (step 1.1): one face per photo, and one person across the set.

A source with no detectable face teaches the LoRA nothing about the face; one with two faces
teaches it a blend; a different person slipped into the set (a sibling, a look-alike, a wrong
download) pulls the identity away. These are the checks ``flenwheel source add/check`` and the
Curate Sources node run whenever face_recognition is installed.

Encodings go into the project's identity cache while sources are added, so the later set check
and every identity scorer built from these sources reuse them instead of encoding again.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ..data.dataset import DatasetVersion
from ..data.errors import ImageLoadError
from ..data.images import load_image, pixel_hash
from ..data.project import Project
from ..identity.face_cache import EncodingCache
from ..identity.face_readings import read_faces
from ..identity.faces import DetectionSettings, Face, identity_available
from ..identity.identity import face_outliers
from ..identity.references import OUTLIER_DISTANCE
from .curation import SourceCheck

SKIPPED_NOTICE = "face checks skipped: face_recognition not installed"


def face_count_issues(faces: list[Face]) -> list[str]:
    """ "no face", "2 faces" or nothing: the per-image wording the curation report shows."""
    if not faces:
        return ["no face"]
    return [f"{len(faces)} faces"] if len(faces) > 1 else []


class FaceSourceCheck:
    """The ``SourceCheck`` for faces; see the module docstring."""

    name = "faces"

    def __init__(
        self,
        project: Project,
        tolerance: float = OUTLIER_DISTANCE,
        settings: DetectionSettings | None = None,
    ) -> None:
        self.tolerance = tolerance
        self.settings = settings or DetectionSettings()
        self.cache = EncodingCache(project.cache_dir / "identity")

    def image_issues(self, image: Image.Image) -> list[str]:
        return face_count_issues(self.cache.faces(pixel_hash(image), self.settings, lambda: image))

    def image_scores(self, image: Image.Image) -> dict[str, Any]:
        """What the instruments read (``scores["instruments"]``: view, yaw, expression; docs/benchmark.md)."""
        return {"instruments": read_faces(image, self.settings).to_json()}

    def set_issues(self, dataset: DatasetVersion) -> dict[str, list[str]]:
        """Identity outliers, plus face-count issues of records added before face checks were available."""
        issues: dict[str, list[str]] = {}
        largest: dict[str, Face] = {}
        for record in dataset.records:
            path = dataset.image_path(record)
            try:
                faces = self.cache.faces(record.id, self.settings, lambda p=path: load_image(p))
            except ImageLoadError:
                continue  # check_sources already reports a missing or unreadable file
            known = set((record.quality or {}).get("reasons", []))
            new = [issue for issue in face_count_issues(faces) if issue not in known]
            if new:
                issues[record.id] = new
            if faces:
                largest[record.id] = faces[0]
        ids = list(largest)
        outliers = face_outliers([largest[i].encoding for i in ids], self.tolerance)
        majority = 2 * len(outliers) < len(ids)
        for index, median in outliers.items():
            text = (
                f"identity outlier: the face does not match the other sources (median distance {median:.2f} "
                f"> {self.tolerance:.2f}); a different person?"
                if majority
                else f"the sources show more than one person (median distance {median:.2f} to the others)"
            )
            issues.setdefault(ids[index], []).append(text)
        return issues


def source_checks(project: Project) -> tuple[list[SourceCheck], str | None]:
    """The checks to run on sources, and a notice to show when face checks are unavailable."""
    if identity_available():
        return [FaceSourceCheck(project)], None
    return [], SKIPPED_NOTICE
