"""The flywheel spinning by itself: whole turns of both flywheels until the stop rule holds.

Each stage of a turn is marked done in ``reports/flywheel.json`` as soon as it finishes, with the
versions it chose, so a rerun of the same command (after Ctrl+C, kill -9, or a review break)
resumes at the first unfinished stage of the unfinished turn and goes on turn after turn. After
every turn the stop rule (``stop_rule``) decides; the reason is printed and recorded, and the
flywheel report (json, html, png) is rewritten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.atomic import atomic_write_json
from ..data.project import Project
from ..data.records import utc_now
from ..editor.editor_skip import too_few_triplets
from ..review.gate import GateScope, scope_for
from . import editor_turn
from .config import TurnConfig
from .flywheel_report import write_flywheel_report
from .state import FlywheelState
from .stop_rule import first_try, gain, stop_reason
from .turn import REPORT_FILE, Log, Turn, TurnReport


@dataclass
class FlywheelRun:
    """What the loop did this time: the turns it ran (their reports), why it stopped, its files."""

    project: Path
    turns: list[TurnReport] = field(default_factory=list)
    stop_reason: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def last_turn(self) -> TurnReport | None:
        return self.turns[-1] if self.turns else None


def _enriched_figures(turn: Turn, version: str) -> None:
    """Images and rates of this turn's enrichment and its review."""
    from ..enrich.summary import summarize

    dataset = turn.project.dataset("enriched", version)
    summary = turn.summaries.get("enriched")
    counts = summary.counts if summary is not None else {}
    reviewed = sum(counts.values())
    images = turn.entry["images"]
    images.update(sources=len(turn.project.dataset("source").records), enriched=len(dataset.records),
                  good=counts.get("good", 0), corrections=counts.get("needs_correction", 0),
                  rejected=counts.get("reject", 0))
    # the enrichment's own rule (what its console summary prints): an edit with no face found counts as not kept
    kept = summarize(version, dataset.records, images["sources"]).kept_rate
    turn.entry["identity_pass_rate"]["enrichment"] = None if kept is None else round(kept, 4)
    turn.entry["correction_rate"] = round(images["corrections"] / reviewed, 4) if reviewed else None


def _character_flywheel(turn: Turn, state: FlywheelState) -> None:
    entry, project, versions = turn.entry, turn.project, turn.entry["versions"]
    char = f"v{entry['turn']}"
    with state.stage(entry, "sources") as todo:
        if todo and entry["turn"] == 1:
            turn.curate()
    with state.stage(entry, "enrich") as todo:
        if todo:
            if "enriched" not in versions:
                versions["enriched"] = project.next_version("enriched")
                state.save()
            turn.enrich(versions["enriched"])
    with state.stage(entry, "review enriched") as todo:
        if todo:
            turn.log("1.3 review of the enriched images")
            turn.review("enriched", scope_for(project, "enriched", version=versions["enriched"]))
            _enriched_figures(turn, versions["enriched"])
    with state.stage(entry, "train character") as todo:
        if todo:
            entry["char_lora"] = f"char_{char}"
            versions["char_lora_file"] = turn.train(char)
    with state.stage(entry, "generate") as todo:
        if todo:
            entry["resume"] = {"synthetic_ids": list(turn.generate_and_filter(versions["char_lora_file"]).ids)}
    with state.stage(entry, "review synthetic") as todo:
        if todo:
            turn.log("1.7 review of the synthetic images (pick the pristine ones)")
            whole = scope_for(project, "synthetic", version=versions["synthetic"])
            scope = GateScope(project, whole.stage, whole.dataset, tuple(entry["resume"]["synthetic_ids"]))
            entry["images"]["pristine"] = len(turn.review("synthetic", scope))
            kept, made = entry["images"].get("kept", 0), entry["images"].get("synthetic", 0)
            entry["identity_pass_rate"]["generation"] = round(kept / made, 4) if made else None
    with state.stage(entry, "model card") as todo:
        if todo:
            _model_card(turn, state)


def _model_card(turn: Turn, state: FlywheelState) -> None:
    from ..benchmark.compare import write_comparison
    from ..benchmark.results import load_results

    label = turn.benchmark(turn.entry["versions"]["char_lora_file"])
    if label is None:
        turn.entry["notes"].append("benchmark.enabled is false: no model card, so the target cannot be judged")
        return
    results = load_results(turn.project.benchmark_dir(label) / "results.json")
    turn.entry["first_try"] = first_try(results, turn.config.stop.target)
    turn.entry["card"] = card_rates(results)
    if turn.config.generate.aim:
        upcoming, _ = turn.generation_plan(turn.entry["turn"] + 1)
        turn.entry["next_allocation"] = upcoming.allocation.to_json()
    turn.entry["versions"]["model_card"] = label
    if state.data.get("target") is None:
        state.data["target"] = turn.entry["first_try"]["target"]
    previous = [t for t in state.turns
                if t["turn"] < turn.entry["turn"] and (t.get("versions") or {}).get("model_card")]
    if previous:
        html, _, _ = write_comparison(turn.project, previous[-1]["versions"]["model_card"], label)
        turn.link(f"compare {previous[-1]['versions']['model_card']} -> {label}", html)


def card_rates(results: dict[str, Any]) -> dict[str, Any]:
    """The card's first-try success per row (expression), column (view) and for the poses: what aiming
    should move, kept in the turn's entry for the report."""
    summary = results.get("summary") or {}

    def rates(groups: dict[str, Any]) -> dict[str, Any]:
        return {name: group["first_try"]["rate"] for name, group in groups.items()}

    return {"label": results.get("lora_version"), "rows": rates(summary.get("rows") or {}),
            "columns": rates(summary.get("columns") or {}),
            "poses": ((summary.get("poses") or {}).get("first_try") or {}).get("rate")}


def _editor_flywheel(turn: Turn, state: FlywheelState) -> None:
    entry, versions, editor = turn.entry, turn.entry["versions"], turn.entry["editor"]
    if not turn.config.editor.enabled:
        editor["why"] = "editor.enabled is false: the editor flywheel did not run"
        return
    with state.stage(entry, "corrections") as todo:
        if todo:
            turn.log("2.1 corrections: fixes and improved-prompt re-runs")
            turn.record("corrections", editor_turn.rerun_corrections(turn, versions["enriched"]))
    with state.stage(entry, "triplets") as todo:
        if todo:
            ours = [v for t in state.turns for v in [(t.get("versions") or {}).get("enriched")] if v]
            version, count, lines = editor_turn.build_turn_triplets(turn, ours)
            versions["triplets"], entry["images"]["triplets"] = version, count
            turn.record("triplets", lines)
    with state.stage(entry, "train editor") as todo:
        if todo:
            _train_editor(turn)
    with state.stage(entry, "compare editors") as todo:
        if todo and editor["trained"]:
            turn.log(f"2.3 comparing editors: {editor_turn.editor_label(editor['used'])} vs {editor['trained']}")
            decision = editor_turn.compare_editors(turn, editor["trained"], versions.get("triplets"))
            editor.update(chosen=decision["chosen"], why=decision["why"], comparison=decision)
            for kind, path in decision.get("files", {}).items():
                turn.link(f"editor comparison {decision['comparison']} {kind}", path)
            turn.record("compare editors", [decision["why"], *([decision["sources"]] if "sources" in decision else [])])


def _train_editor(turn: Turn) -> None:
    entry, editor, cfg = turn.entry, turn.entry["editor"], turn.config.editor
    count, version = entry["images"].get("triplets", 0), entry["versions"].get("triplets")
    skip = too_few_triplets(count if version is not None else 0, cfg.min_triplets)
    if skip is not None:
        editor["why"] = (f"editor LoRA not trained: {skip.reason} (editor.min_triplets); "
                         f"keeping {editor_turn.editor_label(editor['used'])}")
        turn.record("train editor", [editor["why"]])
        return
    turn.log(f"2.2 editor LoRA on {count} triplets ({version})")
    trained, lines = editor_turn.train_editor(turn, version)
    editor["trained"] = trained
    if trained is None:
        editor["why"] = lines[0]
    turn.record("train editor", lines)


def run_one_turn(turn: Turn, state: FlywheelState) -> dict[str, Any]:
    """Both flywheels for the state's current turn, resuming at its first unfinished stage."""
    turn.entry = state.current(list(turn.config.models.edit_loras))
    turn.entry.setdefault("images", {})
    turn.log(f"=== turn {turn.entry['turn']} ===")
    _character_flywheel(turn, state)
    turn.release_flux()
    _editor_flywheel(turn, state)
    return turn.entry


def run_flywheel(project: Project, config: TurnConfig, auto: bool = False, log: Log = print,
                 max_turns: int | None = None) -> FlywheelRun:
    """Run (or resume) turns until the stop rule holds; writes the flywheel report after each turn."""
    start = time.monotonic()
    limit = max_turns or config.stop.max_turns
    run = FlywheelRun(project.root)
    if auto:
        log("NOTE: auto-review decides every review (demo/test only, not a human); reports say so")
    state = FlywheelState.load(project, auto)
    reason = _reason(state, config, limit)
    while reason is None:
        turn = Turn(project, config, auto, log)
        turn.state = state
        turn_start = time.monotonic()
        entry = run_one_turn(turn, state)
        turns = state.turns
        entry["gain"] = gain(turns, len(turns) - 1)
        entry["finished"] = utc_now()
        turn.report.seconds = time.monotonic() - turn_start
        atomic_write_json(project.root / "reports" / REPORT_FILE, turn.report.to_json())
        run.turns.append(turn.report)
        state.save()
        reason = _reason(state, config, limit)
        if reason is None:
            run.files = write_flywheel_report(state)
    state.data["stopped"] = {"reason": reason, "at": utc_now(), "after_turn": len(state.finished_turns)}
    if state.finished_turns:
        state.finished_turns[-1]["stop_reason"] = reason
    state.save()
    run.files = write_flywheel_report(state)
    run.stop_reason = reason
    run.seconds = time.monotonic() - start
    log(f"the flywheel stopped: {reason}")
    return run


def _reason(state: FlywheelState, config: TurnConfig, limit: int) -> str | None:
    finished = state.finished_turns
    target = config.stop.target or state.data.get("target") or 0.8
    reason = stop_reason(finished, target, config.stop.patience, limit)
    if reason is None and finished and not (config.iterate.enabled and config.iterate.train_next):
        key = "iterate.enabled" if not config.iterate.enabled else "iterate.train_next"
        reason = f"{key} is false: one turn only, no next character LoRA"
    return reason
