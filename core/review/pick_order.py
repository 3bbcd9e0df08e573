"""The pristine review's order: candidates ranked by the gap they would fill in the training set.

Step 1.7 asks for pristine picks that "cover new angles/expressions/poses not in the original
dataset". The order is greedy: the next candidate is the one that adds most to the training set
*as it would be* with every candidate ranked before it, so of two images of the same empty cell
the first fills the gap and the second ranks as a duplicate. What an image adds: a view x
expression cell of the card nobody shows yet (4), a new view (2), a new expression (1), a new pose
(1), else a little for a rarely shown cell; ties go to the wider identity margin (tolerance minus
face distance). An image's view and expression come from ``identity.coverage.image_tags``: measured
first, else the prompt's intent, which ranks but is marked so, and never counts as coverage.

``best`` preselects the first N for the person to confirm in the page; nothing here records a
decision, so a suggestion is never an accepted pick.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..data.project import Project, parse_version
from ..data.records import ImageRecord
from ..data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES
from ..identity.coverage import ImageTags, SetCoverage, count_coverage, image_tags
from .store import Decision

PICK = "pristine"
GAIN = {"cell": 4.0, "view": 2.0, "expression": 1.0, "pose": 1.0}


@dataclass(frozen=True)
class Ranked:
    """One candidate in the order: what it would add, how sure the tags are, its identity margin."""

    record_id: str
    rank: int
    score: float
    adds: tuple[str, ...]
    measured: bool
    margin: float | None
    suggested: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.record_id, "rank": self.rank, "score": round(self.score, 3), "adds": list(self.adds),
                "measured": self.measured, "margin": None if self.margin is None else round(self.margin, 4),
                "suggested": self.suggested}


@dataclass
class PickOrder:
    """The ranked candidates, and the training set's coverage before and after the picks and suggestions."""

    ranked: list[Ranked] = field(default_factory=list)
    before: SetCoverage = field(default_factory=SetCoverage)
    after: SetCoverage = field(default_factory=SetCoverage)

    @property
    def suggested(self) -> list[str]:
        return [r.record_id for r in self.ranked if r.suggested]

    def to_json(self) -> dict[str, Any]:
        return {"order": [r.to_json() for r in self.ranked], "suggested": self.suggested,
                "before": self.before.to_json(), "after": self.after.to_json()}

    def lines(self, filenames: dict[str, str]) -> list[str]:
        """The order as a person reads it (``flenwheel review order``)."""
        out = [f"{r.rank:4d}. {'*' if r.suggested else ' '} {filenames.get(r.record_id, r.record_id[:12])}: "
               f"{', '.join(r.adds) or 'adds nothing new'}"
               + ("" if r.margin is None else f"; identity margin {r.margin:+.2f}") for r in self.ranked]
        views = ", ".join(f"{v} {self.before.views[v]}->{self.after.views[v]}" for v in CARD_ANGLES)
        empty = [sum(1 for a in CARD_ANGLES for e in CARD_EXPRESSIONS if not c.cells[(a, e)])
                 for c in (self.before, self.after)]
        out += [f"views before -> after the picks{' and suggestions' if self.suggested else ''}: {views}",
                f"empty card cells: {empty[0]} -> {empty[1]} of {len(CARD_ANGLES) * len(CARD_EXPRESSIONS)}"]
        if self.suggested:
            out.append(f"* {len(self.suggested)} suggested: confirm them in the review page (nothing is decided yet)")
        return out


def _margin(record: ImageRecord) -> float | None:
    score = record.scores.get("identity") if isinstance(record.scores, dict) else None
    if not isinstance(score, dict) or score.get("distance") is None or score.get("tolerance") is None:
        return None
    return float(score["tolerance"]) - float(score["distance"])


def _gain(tags: ImageTags, cover: SetCoverage) -> tuple[float, list[str]]:
    """What ``tags`` would add to ``cover``; the intent of a prompt is used but said so."""
    view, expression, pose = tags.view, tags.expression, tags.pose
    adds: list[tuple[float, str]] = []
    if view in CARD_ANGLES and expression in CARD_EXPRESSIONS:
        seen = cover.cells[(view, expression)]
        adds.append((GAIN["cell"], f"new cell {view}/{expression}") if not seen
                    else (1.0 / (1 + seen), f"{view}/{expression} (shown {seen}x)"))
    if view in CARD_ANGLES and not cover.views[view]:
        adds.append((GAIN["view"], f"new view {view}"))
    if expression in CARD_EXPRESSIONS and not cover.expressions[expression]:
        adds.append((GAIN["expression"], f"new expression {expression}"))
    if pose in CARD_POSES and not cover.poses[pose]:
        adds.append((GAIN["pose"], f"new pose {pose}"))
    note = " (prompt's intent, not measured)" if tags.intended else ""
    return sum(g for g, _ in adds), [f"{text}{note}" for _, text in adds]


def rank_candidates(candidates: Iterable[ImageRecord], before: SetCoverage, best: int = 0) -> list[Ranked]:
    """The greedy order (see the module docstring); the first ``best`` are marked suggested."""
    pool = {r.id: (r, image_tags(r), _margin(r)) for r in candidates}
    running, ranked = before.copy(), []
    while pool:
        def key(item_id: str) -> tuple[float, bool, float]:
            _, tags, margin = pool[item_id]
            return (_gain(tags, running)[0], not tags.intended, -9.0 if margin is None else margin)

        chosen = max(pool, key=key)
        record, tags, margin = pool.pop(chosen)
        score, adds = _gain(tags, running)
        ranked.append(Ranked(record.id, len(ranked) + 1, score, tuple(adds), not tags.intended, margin,
                             len(ranked) < best))
        running.add(ImageTags(tags.view, tags.expression, tags.pose))  # by every tag: a duplicate ranks after
    return ranked


def _maker(project: Project, version: str) -> str:
    """The character LoRA version (``vK``) that made synthetic ``version``: its info's ``lora_version``,
    else the same number (the loop's turn N generates synthetic/vN with char_vN)."""
    made_by = str(project.dataset("synthetic", version).load().info.get("lora_version") or "")
    number = made_by.removeprefix("char_v")
    return f"v{number}" if number.isdigit() and number != "0" else f"v{parse_version(version)}"


def pick_order(project: Project, version: str, records: Iterable[ImageRecord], current: dict[str, Decision],
               best: int = 0) -> PickOrder:
    """Rank the undecided candidates of synthetic ``version`` against the training set they would join:
    the set of the LoRA that made them (``before``) plus the picks already made; ``after``
    adds those picks and the suggestions (by measured tags only)."""
    from ..training.planning import training_records

    records = list(records)
    before = count_coverage(training_records(project, _maker(project, version)))
    after = before.copy()
    for record in records:
        if getattr(current.get(record.id), "label", None) == PICK:
            after.add(image_tags(record))
    ranked = rank_candidates([r for r in records if r.id not in current], after, best)
    by_id = {r.id: r for r in records}
    for item in ranked:
        if item.suggested:
            after.add(image_tags(by_id[item.record_id]))
    return PickOrder(ranked, before, after)
