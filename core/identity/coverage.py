"""What a set of images covers: the model card's views x expressions and its poses, as measured.

Aiming the flywheel (the generation plan, the enrichment plan, the order of the pristine picks and
the flywheel report) starts from what the training set already shows. A prompt tag says what an
image was *asked* to show, not what it shows, so it never counts: ``image_tags`` is the one place
that reads a record's view, expression and pose, preferring what the instruments measured on the
image (``scores["instruments"]``: the face mesh's view when it read one without doubt, the
expression only when its reading is confident and was validated at the precision the card demands,
``core/vision/validation.yaml``) and falling back to the tags a person gave the sources at curation. Tags copied from a
prompt or an edit template come back marked ``intended``; ``count_coverage`` leaves them out and
counts those images as unmeasured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..data.records import ImageRecord
from ..data.taxonomy import ANGLES, CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES, EXPRESSIONS, POSES
from ..vision.validation import load_validation

#: Where measurements live in ``record.scores``: a taxonomy word, or a mapping holding it under the same key
#: (``{"view": "profile-left", "yaw": 71.0}``); the body-pose check stores ``{"pose": ..., "view": ...}``.
MEASURED_VIEW, MEASURED_EXPRESSION, MEASURED_POSE = "view", "expression", "body_pose"
#: The face instruments' readings (``FaceReadings.to_json``), stored on sources, model-card images and the
#: synthetic images the identity filter scored (so pristine picks carry them into the next training set).
INSTRUMENTS = "instruments"
#: The stage whose ``angle`` / ``expression`` tags a person gave (curation); every other stage's are intents.
CURATED_STAGE = "source"


@dataclass(frozen=True)
class ImageTags:
    """One image's view, expression and pose, and which of them only repeat a prompt's intent."""

    view: str | None = None
    expression: str | None = None
    pose: str | None = None
    intended: frozenset[str] = frozenset()

    def known(self, name: str) -> str | None:
        """The tag when it was measured or curated (what coverage may count), else None."""
        return None if name in self.intended else getattr(self, name)


def _word(value: Any, key: str, vocabulary: tuple[str, ...]) -> str | None:
    word = value.get(key) if isinstance(value, dict) else value
    return word if isinstance(word, str) and word in vocabulary and word != "unknown" else None


def _instrument_words(readings: Any) -> dict[str, str]:
    """The view and expression the face instruments read, where they may be trusted: a view read
    without doubt, an expression read confidently by a model validated for that word."""
    if not isinstance(readings, dict):
        return {}
    words = {}
    view = _word(readings.get("view"), "view", ANGLES)
    if view and not readings.get("view_problem"):
        words["view"] = view
    expression = readings.get("expression") if isinstance(readings.get("expression"), dict) else {}
    word = _word(expression.get("word"), "expression", EXPRESSIONS)
    if word and expression.get("confident") and load_validation().expression_validated(word):
        words["expression"] = word
    return words


def image_tags(record: ImageRecord) -> ImageTags:
    """The record's view, expression and pose: measured first, then curation tags, then (marked) intents.

    The one reader of these fields for coverage; point it at new measurement keys here.
    """
    scores = record.scores if isinstance(record.scores, dict) else {}
    extra = record.model_extra or {}
    readings = _instrument_words(scores.get(INSTRUMENTS))
    measured = {"view": _word(scores.get(MEASURED_VIEW), "view", ANGLES) or readings.get("view"),
                "expression": _word(scores.get(MEASURED_EXPRESSION), "expression", EXPRESSIONS)
                or readings.get("expression"),
                "pose": _word(scores.get(MEASURED_POSE), "pose", POSES)}
    tagged = {"view": _word(record.angle, "view", ANGLES),
              "expression": _word(record.expression, "expression", EXPRESSIONS),
              "pose": _word(extra.get("pose"), "pose", POSES)}
    curated = record.stage == CURATED_STAGE
    intended = frozenset(() if curated else (name for name, word in measured.items()
                                             if word is None and tagged[name] is not None))
    return ImageTags(**{name: measured[name] or tagged[name] for name in measured}, intended=intended)


@dataclass
class SetCoverage:
    """Counts of measured (or curated) views, expressions, card cells and poses over a set of images."""

    images: int = 0
    views: Counter[str] = field(default_factory=Counter)
    expressions: Counter[str] = field(default_factory=Counter)
    cells: Counter[tuple[str, str]] = field(default_factory=Counter)
    poses: Counter[str] = field(default_factory=Counter)
    unmeasured: int = 0

    def add(self, tags: ImageTags) -> None:
        """Count one image; an image without a known view or expression is also counted as unmeasured."""
        self.images += 1
        view, expression, pose = tags.known("view"), tags.known("expression"), tags.known("pose")
        self.views.update([view] if view else [])
        self.expressions.update([expression] if expression else [])
        self.poses.update([pose] if pose else [])
        if view and expression:
            self.cells[(view, expression)] += 1
        if not (view or expression or pose):
            self.unmeasured += 1

    def copy(self) -> SetCoverage:
        return SetCoverage(self.images, Counter(self.views), Counter(self.expressions), Counter(self.cells),
                           Counter(self.poses), self.unmeasured)

    def knows(self, what: str) -> bool:
        """Whether any image has a known ``view``, ``expression`` or ``pose``: a set where nothing of a
        kind was measured or tagged lacks nothing of it that anyone could aim at."""
        counts = {"view": self.views, "expression": self.expressions, "pose": self.poses}[what]
        return sum(counts.values()) > 0

    def missing_views(self) -> list[str]:
        """Card views no image shows (none when no view is known at all)."""
        return [view for view in CARD_ANGLES if not self.views[view]] if self.knows("view") else []

    def to_json(self) -> dict[str, Any]:
        """The report's form: the card grid (rows = views) plus the per-word counts."""
        return {
            "images": self.images, "unmeasured": self.unmeasured,
            "grid": {"angles": list(CARD_ANGLES), "expressions": list(CARD_EXPRESSIONS),
                     "counts": [[self.cells[(a, e)] for e in CARD_EXPRESSIONS] for a in CARD_ANGLES]},
            "views": {view: self.views[view] for view in CARD_ANGLES},
            "expressions": {e: self.expressions[e] for e in CARD_EXPRESSIONS},
            "poses": {pose: self.poses[pose] for pose in CARD_POSES},
        }

    def lines(self) -> list[str]:
        """Two short lines for logs and dry runs."""
        views = ", ".join(f"{v} {self.views[v]}" for v in CARD_ANGLES)
        expressions = ", ".join(f"{e} {self.expressions[e]}" for e in CARD_EXPRESSIONS)
        return [f"training set coverage ({self.images} images, {self.unmeasured} without a measured or curated "
                f"view/expression): views {views}", f"  expressions {expressions}"]


def count_coverage(records: Iterable[ImageRecord]) -> SetCoverage:
    """What ``records`` cover, counting only measured or curated tags (see the module docstring)."""
    coverage = SetCoverage()
    for record in records:
        coverage.add(image_tags(record))
    return coverage
