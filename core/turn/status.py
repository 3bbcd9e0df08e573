"""``flenwheel status PROJECT``: where the flywheel stands and what a person must do next.

Read-only: it reads ``reports/flywheel.json`` and the review store, loads no model and writes
nothing, so it is safe to run while a turn is running in another terminal.
"""

from __future__ import annotations

from typing import Any

from ..data.dataset import DatasetVersion
from ..data.project import Project
from ..review.store import ReviewStore
from .state import STAGES, FlywheelState, flywheel_path

#: Which review a stage waits at: (review stage, dataset stage, key of the version in the turn entry).
REVIEWS = {"review enriched": ("enriched", "enriched", "enriched"),
           "review synthetic": ("synthetic", "synthetic", "synthetic"),
           "corrections": ("rerun", "reruns", "enriched")}


def _pending(project: Project, review: str, dataset_stage: str, version: str | None) -> int:
    if version is None:
        return 0
    dataset = DatasetVersion(project, dataset_stage, version)
    if not dataset.exists():
        return 0
    decided = ReviewStore(project).current(review, version)
    return sum(1 for record in dataset.records if record.id not in decided)


def _comparison_pending(project: Project, entry: dict[str, Any]) -> list[tuple[str, int]]:
    """The enriched versions of this turn's editor comparison that still wait for decisions."""
    from ..editor.editor_compare import CompareError, load_comparison

    try:
        comparison = load_comparison(project, f"turn{entry['turn']}")
    except CompareError:
        return []
    versions = [editor["version"] for editor in comparison["editors"] if editor.get("version")]
    return [(v, n) for v in versions if (n := _pending(project, "enriched", "enriched", v))]


def status_lines(project: Project, address: str = "http://127.0.0.1:8189") -> list[str]:
    """The turn, the stage it is in or waiting at, and the next thing a person must do."""
    run = f"flenwheel run {project.root} --config turn.yaml"
    if not flywheel_path(project).is_file():
        return [f"{project.config.name}: no flywheel turn has run yet", f"next: {run}"]
    state = FlywheelState.load(project)
    lines = [f"{project.config.name}: {len(state.finished_turns)} turns finished"
             + (" (auto-review: demo only, not a human)" if state.data.get("auto_review") else "")]
    for turn in state.finished_turns:
        first = turn.get("first_try") or {}
        lines.append(f"  turn {turn['turn']}: {turn.get('char_lora')}, first try {first.get('verified', '-')}/"
                     f"{first.get('cells', '-')} verified, {first.get('unverified', '-')} unverified; "
                     f"editor chosen: {'+'.join(turn['editor']['chosen']) or 'base'}")
    stopped = state.data.get("stopped")
    unfinished = state.turns[-1] if state.turns and not state.turns[-1]["finished"] else None
    if unfinished is None:
        if stopped:
            lines += [f"stopped: {stopped['reason']}",
                      "next: nothing to do, unless you raise stop.max_turns (or --max-turns) to go on"]
        else:
            lines.append(f"next: {run} (starts turn {len(state.turns) + 1})")
        return lines
    stage = next((name for name in STAGES if name not in unfinished["done"]), STAGES[-1])
    lines.append(f"turn {unfinished['turn']}: at stage '{stage}'")
    waiting = []
    if stage in REVIEWS:
        review, dataset_stage, key = REVIEWS[stage]
        version = unfinished["versions"].get(key)
        if count := _pending(project, review, dataset_stage, version):
            waiting.append((review, version, count))
    if stage == "compare editors":
        waiting += [("enriched", version, count) for version, count in _comparison_pending(project, unfinished)]
    for review, version, count in waiting:
        lines.append(f"next: review {count} images: open {address}/?stage={review}&version={version} "
                     f"(flenwheel review serve {project.root}, or the review panel in ComfyUI), then: {run}")
    if not waiting:
        lines.append(f"next: {run} (resumes at '{stage}')")
    return lines
