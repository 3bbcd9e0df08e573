"""What the instruments read from one picture's faces: count, box, head yaw and view, expression.

Read once per image and shared by the card's face checks, so every check sees the same face, and
stored on the image record as ``scores["instruments"]`` (``to_json``) for anything that needs the
measured view or expression of a picture (the loop's aiming, the review page).

Each reading either has a value or says why it has none (``*_problem``), in words a person can act
on: the runtime to install, "no face found", a face too small, a mesh the model doubts (read only
when it still shows a clear profile), a yaw too close to a bucket boundary. A reading with a problem
makes its check "not measured", never "fail".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..data.availability import install_line
from ..data.errors import MissingDependencyError
from ..vision.expression import ExpressionReading, read_expression
from ..vision.face_mesh import MIN_MESH_PRESENCE
from ..vision.head_pose import YawBuckets, head_view, mesh_yaws
from ..vision.tflite_models import EMOTION, FACE_MESH, missing_reason
from .faces import MEDIAPIPE, DetectionSettings, Face, find_faces, identity_available, upright_rgb

READINGS_VERSION = 1
#: Faces narrower or shorter than this (px) are too small to read (the card's ``limits.min_face``).
DEFAULT_MIN_FACE = 40
#: The face problem of a picture the detector searched and found no face in.
NO_FACE = "not measured: no face found"


@dataclass
class FaceReadings:
    """The faces of one upright picture and what was read from the largest; see the module docstring."""

    detector: str
    faces: list[Face] = field(default_factory=list)
    face_problem: str | None = None
    yaw: float | None = None
    view: str | None = None
    view_problem: str | None = None
    mesh_presence: float | None = None
    expression: ExpressionReading | None = None
    expression_problem: str | None = None

    @property
    def largest(self) -> Face | None:
        return self.faces[0] if self.faces else None

    @property
    def searched(self) -> bool:
        """True when the detector ran (it found faces, or none): not when its runtime or model was missing."""
        return bool(self.faces) or self.face_problem == NO_FACE

    def to_json(self) -> dict[str, Any]:
        """The record's ``scores["instruments"]`` (documented in docs/benchmark.md)."""
        face = self.largest
        return {
            "version": READINGS_VERSION,
            "detector": self.detector,
            "faces": len(self.faces),
            "box": list(face.box) if face else None,
            "face_problem": self.face_problem,
            "yaw": self.yaw,
            "view": self.view,
            "view_problem": self.view_problem,
            "mesh_presence": self.mesh_presence,
            "expression": self.expression.to_json() if self.expression else None,
            "expression_problem": self.expression_problem,
        }


def _detector_missing(settings: DetectionSettings) -> str | None:
    if settings.model == MEDIAPIPE:
        return missing_reason(FACE_MESH)
    return None if identity_available() else (
        f"not measured: the {settings.model} detector needs face_recognition; {install_line('face_recognition')}")


def _face_problem(faces: list[Face], min_face: int) -> str | None:
    if not faces:
        return NO_FACE
    face = faces[0]
    if min(face.width, face.height) < min_face:
        return f"not measured: the face is {face.width}x{face.height} px, under the {min_face} px the checks need"
    return None


def _clear_profile(fit: float, depth: float, buckets: YawBuckets) -> bool:
    """Both mesh yaws on one side, the depth angle sane, and their mean a profile beyond the margin."""
    yaw = (fit + depth) / 2
    return fit * depth > 0 and abs(depth) <= 90 and buckets.bucket(yaw).startswith("profile") \
        and not buckets.too_close(yaw)


def _read_view(readings: FaceReadings, buckets: YawBuckets) -> None:
    face = readings.largest
    if face is None or readings.face_problem:
        readings.view_problem = readings.face_problem
        return
    if face.mesh is not None:
        readings.mesh_presence = face.mesh.presence
        fit, depth = mesh_yaws(face.mesh)
        readings.yaw = round((fit + depth) / 2, 1)
        if face.mesh.presence < MIN_MESH_PRESENCE and not _clear_profile(fit, depth, buckets):
            readings.view_problem = (f"not measured: the face mesh doubts this face (presence {face.mesh.presence:.2f}"
                                     f" < {MIN_MESH_PRESENCE}) and does not read a clear profile: half hidden, cut "
                                     "off by the edge, or not a face")
            return
    elif face.landmarks:
        readings.yaw = head_view(face.landmarks)[0]
    else:
        readings.view_problem = "not measured: no landmarks for this face"
        return
    readings.view = buckets.bucket(readings.yaw)
    if buckets.too_close(readings.yaw):
        readings.view_problem = (f"not measured: yaw {readings.yaw:+.0f} deg is within {buckets.margin:g} deg of a "
                                 f"view boundary ({buckets.front_max:g}/{buckets.half_max:g}): too close to call")


def _read_expression(readings: FaceReadings, image: Image.Image) -> None:
    face = readings.largest
    if face is None or readings.face_problem:
        readings.expression_problem = readings.face_problem
        return
    missing = missing_reason(EMOTION)
    if missing:
        readings.expression_problem = missing
        return
    readings.expression = read_expression(image, face.box)


def read_faces(image: Image.Image, settings: DetectionSettings, buckets: YawBuckets | None = None,
               min_face: int = DEFAULT_MIN_FACE, encodings: bool = False, view: bool = True,
               expression: bool = True) -> FaceReadings:
    """Find the faces of ``image`` once and read the largest one's view (in ``buckets``) and expression."""
    readings = FaceReadings(settings.model)
    missing = _detector_missing(settings)
    if missing:
        readings.face_problem = readings.view_problem = readings.expression_problem = missing
        return readings
    upright = upright_rgb(image)
    try:
        readings.faces = find_faces(upright, landmarks=view, encodings=encodings, settings=settings)
    except MissingDependencyError as exc:
        readings.face_problem = readings.view_problem = readings.expression_problem = f"not measured: {exc}"
        return readings
    readings.face_problem = _face_problem(readings.faces, min_face)
    if view:
        _read_view(readings, buckets or YawBuckets())
    if expression:
        _read_expression(readings, upright)
    return readings
