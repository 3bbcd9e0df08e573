"""MediaPipe's 468-point face mesh on a BlazeFace detection, and what the card reads from it.

dlib's 68 landmarks collapse onto the visible half of a profile (median |yaw| 14-28 degrees on
60-90 degree profiles), so the head view is read from the dense mesh instead: it is fitted to the
whole face at every turn, with the hidden side placed where the head's shape puts it.

The crop follows MediaPipe's face_detection_front_detection_to_roi: a square 1.5 times the
detection's longer side around its centre, rotated so the eyes are level, resized to the model's
192 px input in [0, 1]; the points are mapped back to image pixels (z in the same pixel units,
larger toward the back of the head).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .blazeface import Detection
from .tflite_models import FACE_MESH, load

ROI_SCALE = 1.5
#: Below this presence (the mesh model's own confidence that a face fills its crop) the mesh is not trusted.
MIN_MESH_PRESENCE = 0.5
#: Mesh indices of the six points of head_pose's 3D model: nose tip, chin, outer eye corner on the image's
#: left, outer eye corner on the image's right, mouth corner on the image's left, mouth corner on the right.
POSE_POINTS = (1, 152, 33, 263, 61, 291)
#: Mouth corners and outer eye corners, for the smile measure.
MOUTH_CORNERS = (61, 291)
EYE_CORNERS = (33, 263)


@dataclass(frozen=True)
class Mesh:
    """468 (x, y, z) points in image pixels, and the model's confidence that a face is there."""

    points: np.ndarray
    presence: float

    def xy(self, indices: tuple[int, ...]) -> list[tuple[float, float]]:
        return [(float(self.points[i, 0]), float(self.points[i, 1])) for i in indices]

    def mouth_ratio(self) -> float:
        """Mouth width over the outer-eye distance, in 3D (a smile widens the mouth; turning the head does not)."""
        mouth = np.linalg.norm(self.points[MOUTH_CORNERS[0]] - self.points[MOUTH_CORNERS[1]])
        eyes = np.linalg.norm(self.points[EYE_CORNERS[0]] - self.points[EYE_CORNERS[1]])
        return round(float(mouth / max(eyes, 1e-6)), 4)


def _roi(detection: Detection) -> tuple[float, float, float, float]:
    """Centre, side and rotation (radians) of the square crop the mesh model reads."""
    left, top, right, bottom = detection.box
    (x0, y0), (x1, y1) = detection.keypoints[0], detection.keypoints[1]
    rotation = math.atan2(y1 - y0, x1 - x0)
    side = max(right - left, bottom - top) * ROI_SCALE
    return (left + right) / 2, (top + bottom) / 2, side, rotation


def face_mesh(image: Image.Image, detection: Detection) -> Mesh:
    """The mesh of the face ``detection`` found in the upright RGB ``image``."""
    runner = load(FACE_MESH)
    size = runner.input_shape[1]
    cx, cy, side, rotation = _roi(detection)
    step, cos, sin = side / size, math.cos(rotation), math.sin(rotation)
    # Output pixel (u, v) samples the image at centre + R(rotation) @ ((u, v) * step - side / 2).
    a, b, d, e = step * cos, -step * sin, step * sin, step * cos
    c = cx - side / 2 * (cos - sin)
    f = cy - side / 2 * (sin + cos)
    crop = image.transform((size, size), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR)
    tensor = np.asarray(crop, dtype=np.float32)[np.newaxis] / 255.0
    raw, flag = runner.run(tensor)
    local = raw.reshape(-1, 3)[:468]
    points = np.empty_like(local)
    points[:, 0] = a * local[:, 0] + b * local[:, 1] + c
    points[:, 1] = d * local[:, 0] + e * local[:, 1] + f
    points[:, 2] = local[:, 2] * step
    presence = 1.0 / (1.0 + math.exp(-float(np.clip(flag.reshape(-1)[-1], -80, 80))))
    return Mesh(points, round(presence, 4))
