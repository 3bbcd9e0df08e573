"""Head yaw from face_recognition's 68 landmarks, and the view word it corresponds to.

The model card asks for front, half (three-quarter) and profile views to either side, and the
benchmark must say whether a picture shows the view its prompt asked for. dlib's 68 points
(``faces.find_faces``) are already computed for identity, so the yaw comes at no extra cost.

Method: a weak-perspective fit of a generic 3D face (six points: nose tip, chin, outer eye
corners, mouth corners; the widely used head-pose model of the OpenCV tutorials, in arbitrary
units with +z out of the face) to the matching landmarks. The 2x3 least-squares projection is
brought to the nearest scaled rotation by SVD; the horizontal component of the face's forward
axis is the sine of the yaw. No camera calibration is needed, and the fit is independent of the
face's size and position.

Sign convention (core/data/taxonomy.py): ``yaw`` is positive when the nose points toward the LEFT
edge of the image, so positive yaws are the ``-left`` views; mirroring a picture negates it.

Measured on the shared photos (``benchmarks/head_pose_accuracy.py``): the five frontal photos
give |yaw| <= 10 degrees; photos turned slightly or moderately by eye give 15-28 degrees on the
side they are turned to; every mirrored copy gives the opposite sign. No photo there shows a
45-degree or full profile view, so the half/profile boundary is not validated on real photos,
and dlib's landmarks are known to collapse onto the visible side for full profiles (the yaw is
then underestimated, and HOG often finds no face at all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.errors import FlenwheelError

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

    def __post_init__(self) -> None:
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


def estimate_yaw(landmarks: Sequence[tuple[float, float]]) -> float:
    """Yaw in degrees from 68 landmarks (positive: the nose points toward the image's left edge)."""
    if len(landmarks) != 68:
        raise FlenwheelError(f"head yaw needs the 68 dlib landmarks, got {len(landmarks)} points")
    points = np.array([landmarks[i] for i in LANDMARK_INDICES], dtype=np.float64)
    points[:, 1] *= -1.0  # image y grows downward; the model's y grows upward
    centred_2d = points - points.mean(axis=0)
    centred_3d = MODEL_POINTS - MODEL_POINTS.mean(axis=0)
    solution, *_ = np.linalg.lstsq(centred_3d, centred_2d, rcond=None)
    projection = solution.T  # 2x3: scale x the first two rows of the head's rotation
    u, _, vt = np.linalg.svd(projection)
    rotation_rows = u @ np.eye(2, 3) @ vt
    forward_x = float(np.clip(rotation_rows[0, 2], -1.0, 1.0))
    return round(-math.degrees(math.asin(forward_x)), 1)


def head_view(landmarks: Sequence[tuple[float, float]], buckets: YawBuckets | None = None) -> tuple[float, str]:
    """``(yaw, view word)`` for one face's landmarks."""
    yaw = estimate_yaw(landmarks)
    return yaw, (buckets or YawBuckets()).bucket(yaw)
