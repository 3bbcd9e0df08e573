"""What a reviewer may say at each review stage: labels, their keys, and which need a reason.

Review stages are data, not code paths: the store validates against them, placement reads each
label's folder, the ReviewGate node reads each label's output slot, and the page draws its
buttons and keys from ``GET .../stages``. A new stage (the model card's human verdicts) is one
more entry in ``REVIEW_STAGES``.

The ``rerun`` stage reviews improved-prompt re-runs of edits marked needs_correction: an accepted
re-run becomes that edit's corrected target in the editor LoRA's triplets (``triplets.py``).

Output slots give every stage the same three node outputs: ``accept`` (good, pristine, correct),
``correct`` (needs_correction) and ``reject``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..data.errors import FlenwheelError

Slot = Literal["accept", "correct", "reject"]
Placement = Literal["folders", "pristine", "labels"]

#: Preset reasons for rejections and corrections; anything else is stored as the reviewer's own words.
REASONS = {
    "identity_drift": "identity drift",
    "artifacts": "artifacts",
    "insufficient_change": "insufficient change",
    "wrong_edit_or_anatomy": "wrong edit or anatomy",
}
MAX_TEXT = 500
FILLS_GAP = "fills gap"
#: Reviewer name of decisions made by ``flenwheel run --auto-review`` (demos and tests only).
AUTO_REVIEWER = "auto-review (demo only, not a human)"


class ReviewError(FlenwheelError):
    """A decision that cannot be recorded as asked (unknown label, missing reason, foreign image)."""


@dataclass(frozen=True)
class LabelSpec:
    """One verdict: its name, keyboard keys, node output slot and placement folder."""

    name: str
    title: str
    keys: tuple[str, ...]
    slot: Slot
    needs_reason: bool = False
    folder: str | None = None
    color: str = "#888888"


@dataclass(frozen=True)
class ReviewStage:
    """A review step: which dataset stage it reads and how decisions become files."""

    name: str
    title: str
    dataset_stage: str
    placement: Placement
    labels: tuple[LabelSpec, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    criteria: dict[str, int] = field(default_factory=dict)

    def label(self, name: str) -> LabelSpec:
        for spec in self.labels:
            if spec.name == name:
                return spec
        raise ReviewError(
            f"'{name}' is not a label of the {self.name} review; use one of {', '.join(self.label_names)}"
        )

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.labels)

    def slot_label(self, slot: Slot) -> LabelSpec | None:
        return next((spec for spec in self.labels if spec.slot == slot), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"reasons": REASONS}


_GOOD = "#2e9d4f"
_CORRECT = "#d69a1c"
_REJECT = "#c8413b"

REVIEW_STAGES: dict[str, ReviewStage] = {
    "enriched": ReviewStage(
        name="enriched",
        title="Enriched images (step 1.3)",
        dataset_stage="enriched",
        placement="folders",
        labels=(
            LabelSpec("good", "Good", ("1", "g"), "accept", folder="good", color=_GOOD),
            LabelSpec("needs_correction", "Needs correction", ("2", "c"), "correct", needs_reason=True,
                      folder="corrections", color=_CORRECT),
            LabelSpec("reject", "Reject", ("3", "r"), "reject", needs_reason=True, folder="rejected",
                      color=_REJECT),
        ),
        criteria={"min_accepted": 30},
    ),
    "synthetic": ReviewStage(
        name="synthetic",
        title="Synthetic images: pick the pristine set (step 1.7)",
        dataset_stage="synthetic",
        placement="pristine",
        labels=(
            LabelSpec("pristine", "Pristine", ("1", "p"), "accept", color=_GOOD),
            LabelSpec("reject", "Reject", ("2", "r"), "reject", needs_reason=True, color=_REJECT),
        ),
        notes=(FILLS_GAP,),
        criteria={"min_accepted": 10},
    ),
    "rerun": ReviewStage(
        name="rerun",
        title="Correction re-runs: accept a corrected target (step 2.1)",
        dataset_stage="reruns",
        placement="labels",
        labels=(
            LabelSpec("accept", "Use as target", ("1", "a"), "accept", color=_GOOD),
            LabelSpec("reject", "Not good enough", ("2", "r"), "reject", color=_REJECT),
        ),
    ),
    "benchmark": ReviewStage(
        name="benchmark",
        title="Model card benchmark verdicts",
        dataset_stage="benchmark",
        placement="labels",
        labels=(
            LabelSpec("correct", "Correct", ("1", "y"), "accept", color=_GOOD),
            LabelSpec("incorrect", "Incorrect", ("2", "x"), "reject", needs_reason=True, color=_REJECT),
        ),
    ),
}


def review_stage(name: str) -> ReviewStage:
    """The stage named ``name``, or an error listing the stages there are."""
    try:
        return REVIEW_STAGES[name]
    except KeyError:
        raise ReviewError(f"unknown review stage '{name}'; use one of {', '.join(REVIEW_STAGES)}") from None


def clean_text(value: str | None, what: str) -> str | None:
    """Trim free text; blank is None, and overly long or control-character text is refused."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    if len(text) > MAX_TEXT:
        raise ReviewError(f"the {what} is {len(text)} characters long; keep it under {MAX_TEXT}")
    return text


def check_verdict(stage: ReviewStage, label: str, reason: str | None) -> str | None:
    """Validate a label and its reason; returns the reason to store (a preset key or free text)."""
    spec = stage.label(label)
    text = clean_text(reason, "reason")
    if text in REASONS.values():
        text = next(key for key, title in REASONS.items() if title == text)
    if spec.needs_reason and not text:
        presets = ", ".join(REASONS.values())
        raise ReviewError(f"'{label}' needs a reason: pick one of {presets}, or describe it in words")
    return text


def reason_title(reason: str | None) -> str | None:
    """Readable form of a stored reason (presets by title, free text as written)."""
    if reason is None:
        return None
    return REASONS.get(reason, reason)
