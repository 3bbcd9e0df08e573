"""Where a review stands, checked against the seed's criteria (steps 1.3 and 1.7).

One function serves ``flenwheel review status``, the ReviewGate node's summary output and the
page's progress panel, so all three always agree. The pristine review also gets a coverage grid
of the model card's angles x expressions, so the reviewer can prefer images that fill a gap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..data.criteria import Criterion
from ..data.project import Project
from ..data.records import ImageRecord
from ..data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS
from ..identity.coverage import image_tags
from .items import record_index
from .pick_order import PickOrder, pick_order
from .stages import AUTO_REVIEWER, FILLS_GAP, ReviewStage, reason_title, review_stage
from .store import Decision, ReviewStore


@dataclass
class Coverage:
    """Counts per model-card angle x expression: picked as pristine, and available to pick."""

    angles: tuple[str, ...]
    expressions: tuple[str, ...]
    picked: list[list[int]]
    available: list[list[int]]
    untagged_picked: int = 0
    #: The training set the picks join (measured or curated tags), before and after the picks.
    training: list[list[int]] | None = None
    after: list[list[int]] | None = None

    @property
    def gaps(self) -> list[tuple[str, str]]:
        """Cells with no pick yet (what the reviewer should look for)."""
        return [(a, e) for i, a in enumerate(self.angles) for j, e in enumerate(self.expressions)
                if not self.picked[i][j]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"gaps": [list(gap) for gap in self.gaps]}


@dataclass
class ReviewSummary:
    stage: str
    dataset: str
    version: str
    total: int
    counts: dict[str, int]
    pending: int
    reasons: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    criteria: list[Criterion] = field(default_factory=list)
    coverage: Coverage | None = None
    auto_decided: int = 0

    @property
    def passed(self) -> bool:
        return all(criterion.passed for criterion in self.criteria)

    def to_json(self) -> dict[str, Any]:
        data = {key: value for key, value in asdict(self).items() if key not in ("criteria", "coverage")}
        return data | {
            "passed": self.passed,
            "criteria": [vars(criterion) for criterion in self.criteria],
            "coverage": self.coverage.to_json() if self.coverage else None,
        }

    def lines(self) -> list[str]:
        """The human-readable report (CLI and node summary)."""
        counts = ", ".join(f"{count} {label}" for label, count in self.counts.items())
        out = [f"{self.dataset} ({self.stage} review): {self.total} images: {counts}, {self.pending} pending"]
        if self.auto_decided:
            out.append(f"  NOTE: {self.auto_decided} decisions were made by --auto-review (demo/test only, "
                       "not a human)")
        if self.reasons:
            out.append("  reasons: " + ", ".join(f"{reason} {n}" for reason, n in self.reasons.items()))
        if self.notes:
            out.append("  notes: " + ", ".join(f"{note} {n}" for note, n in self.notes.items()))
        out += ["  " + c.line() for c in self.criteria]
        if self.coverage:
            out += _coverage_lines(self.coverage)
        return out


def summarize(project: Project, stage: str, version: str, ids: Iterable[str] | None = None) -> ReviewSummary:
    """Counts, reasons, criteria (and coverage for the pristine pick) of one reviewed version.

    ``ids`` limits the summary to some images of the version (a ReviewGate on a subset).
    """
    spec = review_stage(stage)
    index = record_index(project.dataset(spec.dataset_stage, version))
    wanted = set(ids) if ids is not None else None
    records = [record for record in index.records if wanted is None or record.id in wanted]
    current = ReviewStore(project).current(stage, version)
    decided = [current[record.id] for record in records if record.id in current]
    counts = {label: sum(1 for d in decided if d.label == label) for label in spec.label_names}
    summary = ReviewSummary(
        stage=stage, dataset=index.dataset.label, version=version, total=len(records), counts=counts,
        pending=len(records) - len(decided),
        reasons=dict(Counter(reason_title(d.reason) for d in decided if d.reason).most_common()),
        notes=dict(Counter(d.note for d in decided if d.note).most_common()),
        auto_decided=sum(1 for d in decided if d.reviewer == AUTO_REVIEWER),
    )
    summary.criteria = _criteria(spec, summary, decided)
    if spec.name == "synthetic":
        summary.coverage = coverage(records, current, pick_order(project, version, records, current))
    return summary


def _criteria(spec: ReviewStage, summary: ReviewSummary, decided: list[Decision]) -> list[Criterion]:
    criteria = [Criterion("all reviewed", summary.total > 0 and summary.pending == 0,
                          f"{summary.total - summary.pending} of {summary.total} decided")]
    accept = spec.slot_label("accept")
    minimum = spec.criteria.get("min_accepted")
    if accept and minimum:
        have = summary.counts.get(accept.name, 0)
        name = f"at least {minimum} {accept.name}"
        criteria.append(Criterion(name, have >= minimum, f"{have} {accept.name}"))
    needing = [d for d in decided if spec.label(d.label).needs_reason]
    if needing:
        missing = sum(1 for d in needing if not d.reason)
        names = " and ".join(label.name for label in spec.labels if label.needs_reason)
        detail = f"{len(needing) - missing} of {len(needing)} {names} have a reason"
        criteria.append(Criterion("reasons documented for rejections", missing == 0, detail))
    return criteria


def coverage(records: Iterable[ImageRecord], current: dict[str, Decision], order: PickOrder | None = None) -> Coverage:
    """Model-card angle x expression counts of pristine picks and of all candidates (measured view and
    expression, else the prompt's), with the training set's grid before and after the picks."""
    angles, expressions = CARD_ANGLES, CARD_EXPRESSIONS
    picked = [[0] * len(expressions) for _ in angles]
    available = [[0] * len(expressions) for _ in angles]
    untagged = 0
    for record in records:
        is_pick = getattr(current.get(record.id), "label", None) == "pristine"
        tags = image_tags(record)
        if tags.view in angles and tags.expression in expressions:
            cell = (angles.index(tags.view), expressions.index(tags.expression))
            available[cell[0]][cell[1]] += 1
            picked[cell[0]][cell[1]] += is_pick
        elif is_pick:
            untagged += 1
    grids = [None, None] if order is None else [c.to_json()["grid"]["counts"] for c in (order.before, order.after)]
    return Coverage(angles, expressions, picked, available, untagged, *grids)


def _coverage_lines(cover: Coverage) -> list[str]:
    width = max(len(e) for e in cover.expressions) + 2
    lines = ["  coverage (pristine picks / candidates):",
             "    " + " " * 14 + "".join(f"{e:>{width}s}" for e in cover.expressions)]
    for i, angle in enumerate(cover.angles):
        cells = "".join(f"{f'{cover.picked[i][j]}/{cover.available[i][j]}':>{width}s}"
                        for j in range(len(cover.expressions)))
        lines.append(f"    {angle:14s}{cells}")
    if cover.training is not None and cover.after is not None:
        empty = [sum(1 for row in grid for n in row if not n) for grid in (cover.training, cover.after)]
        lines.append(f"    training set (measured or curated): {empty[0]} empty card cells before the picks, "
                     f"{empty[1]} after; flenwheel review order ranks the candidates by the gap they fill")
    total = len(cover.angles) * len(cover.expressions)
    untagged = f"; {cover.untagged_picked} picks lack angle/expression tags" if cover.untagged_picked else ""
    lines.append(f"    {len(cover.gaps)} of {total} cells have no pick yet{untagged} "
                 f"(mark gap-fillers with the '{FILLS_GAP}' note)")
    return lines
