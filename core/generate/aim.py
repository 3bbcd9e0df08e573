"""Step 1.5 aimed: the same number of images, shared out by what the last card and the training set lack.

Without aiming every turn asks for the same prompts x variants, whatever the model card of the
last turn said. Here each prompt's share of the budget (prompts x variants, unchanged) follows its
need: a card cell it targets that failed its first try (or stayed unverified), and a view,
expression, view x expression cell or pose the training set does not show. What the training set
shows is counted from what was measured on its images (``identity.coverage``), never from the
prompts that asked for them. Every prompt keeps at least one variant, the rest is dealt by the
D'Hondt rule on the weights (1 + need), so a plan with no needs is exactly the unaimed plan, and
every planned image says why its prompt got its share. Prompts a user's own prompts file names keep
the variants the file gives: the user's word wins over the aim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.errors import FlenwheelError
from ..data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES
from ..identity.coverage import SetCoverage, count_coverage
from .prompt_sets import (
    MAX_VARIANTS,
    GenerationPrompt,
    PlannedImage,
    PromptSet,
    PromptSetError,
    load_prompt_set,
    plan_images,
)

if TYPE_CHECKING:
    from ..data.project import Project

#: Extra weight per need (a prompt with no need weighs 1).
WEIGHTS = {"failure": 3.0, "unverified": 1.5, "view": 2.0, "expression": 1.0, "cell": 1.0, "pose": 1.0}
RESULTS_FILE = "results.json"


@dataclass
class Needs:
    """What the next images should show: card cells that did not succeed, and the training set's coverage."""

    card: str | None = None
    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    poses: dict[str, str] = field(default_factory=dict)
    coverage: SetCoverage | None = None

    def of(self, prompt: GenerationPrompt) -> tuple[float, list[str]]:
        """The prompt's extra weight and the reasons for it, in words a user can check."""
        reasons: list[tuple[float, str]] = []
        outcome = self.cells.get((prompt.angle or "", prompt.expression or ""))
        if outcome is None and prompt.pose:
            outcome = self.poses.get(prompt.pose)
        if outcome is not None:
            target = f"{prompt.angle}/{prompt.expression}" if prompt.angle and prompt.expression else prompt.pose
            what = "failed" if outcome == "failure" else "stayed unverified on"
            reasons.append((WEIGHTS[outcome], f"card {self.card}: {target} {what} its first try"))
        reasons += self._coverage_reasons(prompt)
        return sum(weight for weight, _ in reasons), [reason for _, reason in reasons]

    def _coverage_reasons(self, prompt: GenerationPrompt) -> list[tuple[float, str]]:
        cover = self.coverage
        if cover is None:
            return []
        view = prompt.angle in CARD_ANGLES and cover.knows("view")
        expression = prompt.expression in CARD_EXPRESSIONS and cover.knows("expression")
        found = []
        if view and not cover.views[prompt.angle]:
            found.append((WEIGHTS["view"], f"training set has no {prompt.angle} image"))
        if expression and not cover.expressions[prompt.expression]:
            found.append((WEIGHTS["expression"], f"training set has no {prompt.expression} image"))
        if view and expression and not cover.cells[(prompt.angle, prompt.expression)]:
            found.append((WEIGHTS["cell"], f"training set has no {prompt.angle}/{prompt.expression} image"))
        if prompt.pose in CARD_POSES and cover.knows("pose") and not cover.poses[prompt.pose]:
            found.append((WEIGHTS["pose"], f"training set has no {prompt.pose} image"))
        return found

    def to_json(self) -> dict[str, Any]:
        return {"card": self.card,
                "card_cells": {f"{a}/{e}": outcome for (a, e), outcome in self.cells.items()},
                "card_poses": dict(self.poses),
                "coverage": self.coverage.to_json() if self.coverage else None}


def needs_from_results(results: dict[str, Any] | None, coverage: SetCoverage | None) -> Needs:
    """Needs from a results.json's cells (first-try outcome) and a training set's coverage."""
    needs = Needs(coverage=coverage)
    if not results:
        return needs
    needs.card = str(results.get("lora_version") or "?")
    for cell in results.get("cells") or []:
        if not isinstance(cell, dict):
            continue
        outcome = cell.get("first_try_outcome") or ("success" if cell.get("first_try_success") else "failure")
        if outcome not in ("failure", "unverified"):
            continue
        if cell.get("kind") == "portrait" and cell.get("angle") and cell.get("expression"):
            needs.cells[(str(cell["angle"]), str(cell["expression"]))] = outcome
        elif cell.get("kind") == "pose" and cell.get("pose"):
            needs.poses[str(cell["pose"])] = outcome
    return needs


def last_card(project: Project, up_to: int | None = None) -> dict[str, Any] | None:
    """The newest model card results of a character LoRA version at most ``up_to`` (all when None)."""
    found = []
    folder = project.benchmarks_dir
    for path in folder.glob(f"char_v*/{RESULTS_FILE}") if folder.is_dir() else []:
        number = path.parent.name.removeprefix("char_v")
        if number.isdigit() and (up_to is None or int(number) <= up_to):
            found.append((int(number), path))
    if not found:
        return None
    path = max(found)[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FlenwheelError(f"{path} cannot be read ({exc}); rerun flenwheel benchmark report, or --no-aim") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise FlenwheelError(f"{path} is not a model card results file; rerun flenwheel benchmark report, or --no-aim")
    return data


def load_needs(project: Project, lora_version: str | None, card_up_to: int | None = None) -> Needs:
    """The needs of a run with LoRA ``char_vN``: the newest card up to ``card_up_to`` (default N) and the
    coverage of char_vN's training set; without a version, the newest card and the project's default set."""
    from ..training.planning import training_records

    version = (lora_version or "").removeprefix("char_")
    number = int(version[1:]) if version[1:].isdigit() else None
    records = training_records(project, version if number else project.next_version("pristine"))
    return needs_from_results(last_card(project, card_up_to if card_up_to is not None else number),
                              count_coverage(records))


@dataclass(frozen=True)
class Share:
    """One prompt's share of the budget and why."""

    prompt: GenerationPrompt
    variants: int
    usual: int
    weight: float
    reasons: tuple[str, ...]
    fixed: bool

    @property
    def why(self) -> str:
        if self.fixed:
            return "named by your prompts file: its variants are kept"
        return "; ".join(self.reasons) or "no need found: the remaining share"

    def to_json(self) -> dict[str, Any]:
        return {"family": self.prompt.family, "prompt_id": self.prompt.id, "angle": self.prompt.angle,
                "expression": self.prompt.expression, "pose": self.prompt.pose, "variants": self.variants,
                "usual": self.usual, "weight": round(self.weight, 3), "fixed": self.fixed, "why": self.why}


@dataclass
class Allocation:
    """Variants per prompt for a fixed budget; ``lines`` is what dry runs and node summaries show."""

    budget: int
    shares: list[Share]
    needs: Needs

    def counts(self) -> dict[str, int]:
        return {_key(share.prompt): share.variants for share in self.shares}

    def by_view(self) -> dict[str, int]:
        """Images per card view (prompts without a view under ``other``), the report's allocation."""
        totals: dict[str, int] = {}
        for share in self.shares:
            view = share.prompt.angle if share.prompt.angle in CARD_ANGLES else "other"
            totals[view] = totals.get(view, 0) + share.variants
        return totals

    def to_json(self) -> dict[str, Any]:
        return {"budget": self.budget, "by_view": self.by_view(), "needs": self.needs.to_json(),
                "prompts": [share.to_json() for share in self.shares]}

    def lines(self) -> list[str]:
        moved = [s for s in self.shares if s.variants != s.usual]
        head = (f"aimed allocation: {self.budget} images over {len(self.shares)} prompts; card "
                f"{self.needs.card or 'none yet'}; {len(moved)} prompts moved off the usual share")
        aimed = [s for s in self.shares if s.reasons or s.fixed]
        rows = [f"  {s.prompt.family}/{s.prompt.id}: {s.usual} -> {s.variants} ({s.why})"
                for s in sorted(aimed, key=lambda s: (-s.variants, s.prompt.family, s.prompt.id))]
        rest = sorted({s.variants for s in self.shares if s not in aimed})
        if rest and aimed:
            rows.append(f"  the other {len(self.shares) - len(aimed)} prompts (no need found): "
                        f"{'/'.join(map(str, rest))} each")
        return [head, *rows]


def _key(prompt: GenerationPrompt) -> str:
    return f"{prompt.family}/{prompt.id}"


def _interleaved(prompts: list[GenerationPrompt]) -> list[int]:
    """Each prompt's place when the families take turns (first of each family, then second...): equal
    needs are served in this order, so a small budget drops the last prompts of every family, not a family."""
    seen: dict[str, int] = {}
    places = []
    for prompt in prompts:
        places.append(seen.get(prompt.family, 0))
        seen[prompt.family] = places[-1] + 1
    order = sorted(range(len(prompts)), key=lambda i: (places[i], i))
    return [order.index(i) for i in range(len(prompts))]


def allocate(prompt_set: PromptSet, needs: Needs, variants: int | None = None) -> Allocation:
    """Share ``len(prompts) x variants`` images out by need (see the module docstring)."""
    usual = prompt_set.variants if variants is None else variants
    if not 1 <= usual <= MAX_VARIANTS:
        raise PromptSetError(f"variants must be between 1 and {MAX_VARIANTS}, not {usual}")
    weighed = [(prompt, *needs.of(prompt)) for prompt in prompt_set.prompts]
    free = [i for i, (prompt, _, _) in enumerate(weighed) if not prompt.from_user]
    floor = 1 if usual > 1 else 0
    counts = [usual if prompt.from_user else floor for prompt, _, _ in weighed]
    tie = _interleaved(prompt_set.prompts)
    for _ in range((usual - floor) * len(free)):
        open_ = [i for i in free if counts[i] < MAX_VARIANTS]
        best = max(open_, key=lambda i: ((1 + weighed[i][1]) / (counts[i] - floor + 1), -tie[i]))
        counts[best] += 1
    shares = [Share(prompt, counts[i], usual, 1 + extra, tuple(reasons), prompt.from_user)
              for i, (prompt, extra, reasons) in enumerate(weighed)]
    return Allocation(usual * len(weighed), shares, needs)


@dataclass
class AimedPlan:
    prompt_set: PromptSet
    allocation: Allocation | None
    plan: list[PlannedImage]


def aimed_plan(project: Project, needs: Needs | None, files: Sequence[str | Path] = (), builtin: bool = True,
               families: Sequence[str] | None = None, ids: Sequence[str] | None = None,
               variants: int | None = None, base_seed: int = 0,
               run_settings: dict[str, Any] | None = None) -> AimedPlan:
    """Load, select, allocate (when ``needs`` is given) and plan: what the CLI, the node and the turn run."""
    prompt_set = load_prompt_set(files, builtin).select(families, ids)
    allocation = allocate(prompt_set, needs, variants) if needs is not None else None
    counts = allocation.counts() if allocation else None
    reasons = {_key(s.prompt): s.why for s in allocation.shares} if allocation else None
    plan = plan_images(prompt_set, project.subject, project.token, variants, base_seed, run_settings,
                       counts=counts, reasons=reasons)
    return AimedPlan(prompt_set, allocation, plan)
