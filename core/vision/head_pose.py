"""Head yaw from face landmarks (MediaPipe's mesh or dlib's 68 points), and the view word it reads as.

The model card asks for front, half (three-quarter) and profile views to either side, and the
benchmark must say whether a picture shows the view its prompt asked for. The landmarks come with
the face (``faces.find_faces``), so the yaw comes at no extra cost.

Method: a weak-perspective fit of a generic 3D face (six points: nose tip, chin, outer eye
corners, mouth corners; the widely used head-pose model of the OpenCV tutorials, in arbitrary
units with +z out of the face) to the matching landmarks. The 2x3 least-squares projection is
brought to the nearest scaled rotation by SVD; the horizontal component of the face's forward
axis is the sine of the yaw. No camera calibration is needed, and the fit is independent of the
face's size and position.

Sign convention (core/data/taxonomy.py): ``yaw`` is positive when the nose points toward the LEFT
edge of the image, so positive yaws are the ``-left`` views; mirroring a picture negates it.

Two sources of landmarks feed the same fit. dlib's 68 points (HOG/CNN detectors) are measured in
``benchmarks/model_card_checks.py``; they collapse onto the visible side of a full profile, so the yaw
is then underestimated. The default is MediaPipe's 468-point mesh (``face_mesh``): its yaw
(``mesh_yaw``) is the mean of this six-point fit, which overestimates moderate turns, and the angle
of the line between the outer eye corners in the mesh's own depth, which flattens full profiles;
their mean reads the labelled views within the card's buckets (``benchmarks/model_card_ceiling.py``
prints the table; the README quotes it). A mesh the model itself doubts (presence under
``face_mesh.MIN_MESH_PRESENCE``) is read only as a clear profile that both yaws put on the same
side: the mesh doubts itself mostly because half the face is hidden, and then the fit is what
fails first (``face_readings``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.errors import FlenwheelError
from .face_mesh import EYE_CORNERS, POSE_POINTS, Mesh

#: Generic 3D face, frontal pose: x toward the image's right, y up, z out of the face toward the camera.
MODEL_POINTS = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip
        (0.0, -330.0, -65.0),  # chin
        (-225.0, 170.0, -135.0),  # outer corner of the eye on the image's left
        (225.0, 170.0, -135.0),  # outer corner of the eye on the image's right
        (-150.0, -150.0, -125.0),  # mouth corner on the image's left
        (150.0, -150.0, -125.0),  # mouth corner on the image's right
    ]
)
#: The dlib (iBUG 300-W) indices of the same six points.
LANDMARK_INDICES = (30, 8, 36, 45, 48, 54)

DEFAULT_FRONT_MAX = 20.0
DEFAULT_HALF_MAX = 50.0


@dataclass(frozen=True)
class YawBuckets:
    """Where front ends and profile begins, in degrees of |yaw| (the card YAML may change them)."""

    front_max: float = DEFAULT_FRONT_MAX
    half_max: float = DEFAULT_HALF_MAX
    #: A yaw within this many degrees of a boundary is too close to call (the check then does not judge).
    margin: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 10:
            raise FlenwheelError(f"the head angle margin must be 0..10 degrees, got {self.margin}")
        if not 0 < self.front_max < self.half_max < 90:
            raise FlenwheelError(
                f"head angle limits must satisfy 0 < front_max < half_max < 90, got "
                f"front_max {self.front_max} and half_max {self.half_max}"
            )

    def bucket(self, yaw: float) -> str:
        """The view word for a yaw: front, half-left/right or profile-left/right."""
        size = abs(yaw)
        if size <= self.front_max:
            return "front"
        side = "left" if yaw > 0 else "right"
        return f"half-{side}" if size <= self.half_max else f"profile-{side}"

    def too_close(self, yaw: float) -> bool:
        """Whether ``yaw`` lies within ``margin`` of a boundary, so either neighbouring word could be right."""
        return self.bucket(yaw - self.margin) != self.bucket(yaw + self.margin)


def estimate_yaw(landmarks: Sequence[tuple[float, float]]) -> float:
    """Yaw in degrees from 68 landmarks (positive: the nose points toward the image's left edge)."""
    if len(landmarks) != 68:
        raise FlenwheelError(f"head yaw needs the 68 dlib landmarks, got {len(landmarks)} points")
    return fit_yaw([landmarks[i] for i in LANDMARK_INDICES])


def fit_yaw(six_points: Sequence[tuple[float, float]]) -> float:
    """Yaw in degrees from the image positions of MODEL_POINTS' six points, in their order."""
    points = np.array(six_points, dtype=np.float64)
    points[:, 1] *= -1.0  # image y grows downward; the model's y grows upward
    centred_2d = points - points.mean(axis=0)
    centred_3d = MODEL_POINTS - MODEL_POINTS.mean(axis=0)
    solution, *_ = np.linalg.lstsq(centred_3d, centred_2d, rcond=None)
    projection = solution.T  # 2x3: scale x the first two rows of the head's rotation
    u, _, vt = np.linalg.svd(projection)
    rotation_rows = u @ np.eye(2, 3) @ vt
    forward_x = float(np.clip(rotation_rows[0, 2], -1.0, 1.0))
    return round(-math.degrees(math.asin(forward_x)), 1)


def mesh_yaws(mesh: Mesh) -> tuple[float, float]:
    """The two yaws the mesh gives, in degrees: the six-point fit, and the eye line's depth angle."""
    eye_line = mesh.points[EYE_CORNERS[1]] - mesh.points[EYE_CORNERS[0]]
    depth_yaw = -math.degrees(math.atan2(float(eye_line[2]), float(eye_line[0])))
    return fit_yaw(mesh.xy(POSE_POINTS)), round(depth_yaw, 1)


def mesh_yaw(mesh: Mesh) -> float:
    """Yaw in degrees from the face mesh: the mean of its two yaws (see the module docstring)."""
    return round(sum(mesh_yaws(mesh)) / 2, 1)


def head_view(landmarks: Sequence[tuple[float, float]], buckets: YawBuckets | None = None) -> tuple[float, str]:
    """``(yaw, view word)`` for one face's landmarks."""
    yaw = estimate_yaw(landmarks)
    return yaw, (buckets or YawBuckets()).bucket(yaw)
