"""What a step-1.5 run did, and the seed's criteria for synthetic data.

The criteria are checked over the whole dataset version, not only the images of the last run, since
an interrupted and resumed run, or a run extended with more prompts, builds one version in pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..data.criteria import Criterion, criteria_lines
from ..data.dataset import DatasetVersion
from ..data.records import ImageRecord
from ..data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES

MIN_IMAGES = 50


@dataclass
class GenerationReport:
    """What a run did, and the seed's step-1.5 criteria over the whole dataset version."""

    dataset: DatasetVersion
    planned: int
    records: list[ImageRecord] = field(default_factory=list)
    generated: list[ImageRecord] = field(default_factory=list)
    skipped: int = 0
    duplicates: list[str] = field(default_factory=list)
    resumed: bool = False
    seconds: float = 0.0
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(criterion.passed for criterion in self.criteria)

    def lines(self) -> list[str]:
        rate = f", {self.seconds / len(self.generated):.2f} s/image" if self.generated else ""
        head = (
            f"{self.dataset.label}: {len(self.generated)} generated, {self.skipped} already there"
            f"{' (resumed)' if self.resumed else ''}, {self.planned} planned{rate}"
        )
        lines = [head] + criteria_lines(self.criteria)
        return lines + [f"duplicate image skipped: {d}" for d in self.duplicates]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.label,
            "planned": self.planned,
            "generated": len(self.generated),
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "resumed": self.resumed,
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "criteria": [vars(c) for c in self.criteria],
            "files": [r.filename for r in self.records],
        }


def check_synthetic(records: list[ImageRecord]) -> list[Criterion]:
    """The seed's criteria: 50+ images, the model card's targets covered, prompt and seed recorded."""
    missing = [f"angle {a}" for a in CARD_ANGLES if all(r.angle != a for r in records)]
    missing += [f"expression {e}" for e in CARD_EXPRESSIONS if all(r.expression != e for r in records)]
    missing += [f"pose {p}" for p in CARD_POSES if all(getattr(r, "pose", None) != p for r in records)]
    untracked = [
        r.filename
        for r in records
        if r.prompt is None or r.seed is None or any(lora.sha256 is None for lora in r.loras)
    ]
    return [
        Criterion(f"{MIN_IMAGES}+ images", len(records) >= MIN_IMAGES, f"{len(records)} images"),
        Criterion(
            "prompts cover the model-card targets",
            not missing,
            "all 5 angles, 4 expressions and 3 poses" if not missing else "missing " + ", ".join(missing),
        ),
        Criterion(
            "metadata tracks prompt and seed",
            not untracked and bool(records),
            f"{len(records) - len(untracked)}/{len(records)} records have prompt, seed and LoRA hashes",
        ),
    ]
