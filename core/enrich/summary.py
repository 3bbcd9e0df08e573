"""The enrichment report: the seed's step-1.2 criteria measured on an enriched dataset version.

- Count: the seed turns 10-20 sources into 50-100 training images, i.e. sources plus edits should
  reach 5x the sources (4 edits per source does it).
- Identity kept: at least 70% of the checked edits should still show the character.
- Spread: how the edits divide across the template families.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.criteria import Criterion
from ..data.records import ImageRecord

COUNT_FACTOR = 5
IDENTITY_TARGET = 0.70


@dataclass
class EnrichSummary:
    dataset: str
    sources: int
    edits: int
    checked: int = 0
    kept: int = 0
    drifted: int = 0
    samples: int = 0
    families: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.sources + self.edits

    @property
    def count_passed(self) -> bool:
        return self.sources > 0 and self.total >= COUNT_FACTOR * self.sources

    @property
    def kept_rate(self) -> float | None:
        return self.kept / self.checked if self.checked else None

    @property
    def identity_passed(self) -> bool | None:
        rate = self.kept_rate
        return None if rate is None else rate >= IDENTITY_TARGET

    def lines(self) -> list[str]:
        rate = self.kept_rate
        identity = (
            f"{self.kept}/{self.checked} edits kept the identity "
            f"({rate:.0%}; target >= {IDENTITY_TARGET:.0%}), "
            f"{self.drifted} marked drifted for review"
            if rate is not None else "identity not checked (gate off)"
        )
        spread = ", ".join(f"{name} {count}" for name, count in sorted(self.families.items())) or "none"
        return [
            f"enriched {self.dataset}",
            Criterion("count", self.count_passed, f"{self.edits} edits + {self.sources} sources = {self.total} images "
                      f"(target >= {COUNT_FACTOR}x sources = {COUNT_FACTOR * self.sources})").line(),
            Criterion("identity", self.identity_passed, identity).line(),
            f"     spread: {spread}",
            f"     {self.samples} image(s) marked as samples for manual check (every 10th)",
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "sources": self.sources, "edits": self.edits, "total": self.total,
            "count_target": COUNT_FACTOR * self.sources, "count_passed": self.count_passed,
            "identity_checked": self.checked, "identity_kept": self.kept,
            "identity_kept_rate": self.kept_rate, "identity_target": IDENTITY_TARGET,
            "identity_passed": self.identity_passed, "drifted": self.drifted,
            "families": self.families, "samples_for_manual_check": self.samples,
        }


def summarize(dataset: str, records: Sequence[ImageRecord], sources: int) -> EnrichSummary:
    """Measure the criteria over every edit in the version (earlier runs included)."""
    extra = [record.model_extra or {} for record in records]
    checked = [record for record in records if "identity" in record.scores]
    return EnrichSummary(
        dataset=dataset,
        sources=sources,
        edits=len(records),
        checked=len(checked),
        kept=sum(1 for record in checked if (record.model_extra or {}).get("drifted") is False),
        drifted=sum(1 for fields in extra if fields.get("drifted")),
        samples=sum(1 for fields in extra if fields.get("sample_for_manual_check")),
        families=dict(Counter(str(fields.get("family")) for fields in extra)),
    )
