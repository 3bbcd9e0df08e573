"""The loop of turns on scripted outcomes: the stop rule, the editor choice, and resuming mid-turn.

The stages themselves are replaced by scripts here (the tiny-model run is in test_flywheel_tiny.py),
so these tests check the loop's decisions and its on-disk memory, not the models.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.project import Project
from flenwheel.core.editor.editor_report import EditorStats
from flenwheel.core.turn import editor_turn, loop
from flenwheel.core.turn.config import TurnConfig
from flenwheel.core.turn.state import FlywheelState, flywheel_path
from flenwheel.core.turn.stop_rule import gain, stop_reason


def _turn(number, rate, pristine=3, unverified=0):
    return {"turn": number, "images": {"pristine": pristine},
            "first_try": {"verified": round(rate * 20), "unverified": unverified, "cells": 20, "rate": rate}}


def test_a_turn_without_a_model_card_is_not_a_plateau():
    """No card (benchmark skipped or failed) measured nothing: it is not a 0% that shows no gain."""
    no_card = {"turn": 3, "images": {"pristine": 3}, "first_try": None}
    assert stop_reason([_turn(1, 0.5), _turn(2, 0.6), no_card], 0.8, 2, 9) is None
    assert stop_reason([_turn(1, 0.0), _turn(2, 0.0), no_card | {"turn": 3}], 0.8, 2, 9) is None
    assert stop_reason([_turn(1, 0.5), no_card, _turn(3, 0.6)], 0.8, 2, 9) is None, "two cards are one gain"
    assert stop_reason([_turn(1, 0.5), no_card, _turn(3, 0.6), _turn(4, 0.5)], 0.8, 2, 9).startswith("plateau")
    assert gain([_turn(1, 0.5), no_card], 1) is None and gain([no_card, _turn(2, 0.5)], 1) is None


def test_stop_rule_order_target_pristine_plateau_max_turns():
    assert stop_reason([_turn(1, 0.5), _turn(2, 0.85)], 0.8, 2, 5).startswith("target reached")
    assert stop_reason([_turn(1, 0.5, pristine=0)], 0.8, 2, 5).startswith("no pristine image")
    assert stop_reason([_turn(1, 0.5), _turn(2, 0.6), _turn(3, 0.5)], 0.8, 2, 9).startswith("plateau")
    assert stop_reason([_turn(1, 0.5), _turn(2, 0.6), _turn(3, 0.7)], 0.8, 2, 9) is None
    assert stop_reason([_turn(1, 0.1), _turn(2, 0.2)], 0.8, 2, 2) == "max_turns reached (2)"


def test_unverified_cells_never_reach_the_target():
    assert stop_reason([_turn(1, 0.1, unverified=18)], 0.8, 2, 5) is None


@pytest.fixture
def project(tmp_path):
    return Project.init(tmp_path / "p", name="Ada")


def _scripted(rates, pristine=None, calls=None):
    """A stand-in for run_one_turn whose model card scores ``rates[turn - 1]``."""
    def run_one_turn(turn, state):
        entry = turn.entry = state.current([])
        number = entry["turn"]
        entry["images"] = {"pristine": (pristine or {}).get(number, 4), "enriched": 8}
        entry["first_try"] = {"verified": int(rates[number - 1] * 10), "unverified": 1, "cells": 10,
                              "rate": rates[number - 1], "target": 0.8}
        entry["done"] = ["model card"]
        if calls is not None:
            calls.append(number)
        return entry
    return run_one_turn


def test_a_card_that_passes_at_turn_two_stops_the_loop_there_and_says_so(project, monkeypatch):
    monkeypatch.setattr(loop, "run_one_turn", _scripted([0.3, 0.9, 1.0]))
    lines = []
    run = loop.run_flywheel(project, TurnConfig(), log=lines.append)
    data = json.loads(flywheel_path(project).read_text())
    assert [t["turn"] for t in data["turns"]] == [1, 2]
    assert run.stop_reason.startswith("target reached") and data["stopped"]["reason"] == run.stop_reason
    assert data["turns"][1]["gain"] == 0.6 and data["turns"][1]["stop_reason"] == run.stop_reason
    assert lines[-1] == f"the flywheel stopped: {run.stop_reason}"
    assert (project.root / "reports/flywheel.png").read_bytes()[:4] == b"\x89PNG"
    assert "target reached" in (project.root / "reports/flywheel.html").read_text()


def test_a_plateau_stops_the_loop(project, monkeypatch):
    monkeypatch.setattr(loop, "run_one_turn", _scripted([0.3, 0.3, 0.3, 0.3, 0.3]))
    run = loop.run_flywheel(project, TurnConfig.model_validate({"stop": {"patience": 2}}), log=lambda _: None)
    assert run.stop_reason.startswith("plateau") and len(run.turns) == 3


def test_max_turns_stops_the_loop_and_a_rerun_with_more_turns_goes_on(project, monkeypatch):
    calls = []
    monkeypatch.setattr(loop, "run_one_turn", _scripted([0.1, 0.2, 0.3, 0.4], calls=calls))
    first = loop.run_flywheel(project, TurnConfig(), log=lambda _: None, max_turns=2)
    assert first.stop_reason == "max_turns reached (2)" and calls == [1, 2]
    again = loop.run_flywheel(project, TurnConfig(), log=lambda _: None, max_turns=2)
    assert again.turns == [] and calls == [1, 2], "a finished loop does not run again"
    loop.run_flywheel(project, TurnConfig(), log=lambda _: None, max_turns=3)
    assert calls == [1, 2, 3]


def test_no_pristine_pick_stops_the_loop(project, monkeypatch):
    monkeypatch.setattr(loop, "run_one_turn", _scripted([0.1, 0.2], pristine={1: 0}))
    assert loop.run_flywheel(project, TurnConfig(), log=lambda _: None).stop_reason.startswith("no pristine")


def _stats(label, corrections, reviewed=10, kept=5, rejected=0):
    return EditorStats(label, "v9", [], edits=reviewed, reviewed=reviewed, corrections=corrections, kept=kept,
                       distances=[0.5] * 10, rejected=rejected, good=reviewed - corrections - rejected)


def test_an_editor_whose_edits_are_all_rejected_never_wins():
    """No corrections because nothing was usable is the worst result, not the best."""
    all_rejected = _stats("ours:v1", 0, rejected=10, kept=10)
    for corrections in range(11):
        assert editor_turn.choose(_stats("base", corrections, kept=0), all_rejected)[0] == "current"
        assert editor_turn.choose(all_rejected, _stats("ours:v1", corrections, kept=0))[0] == "new"
    winner, why = editor_turn.choose(_stats("base", 2), all_rejected)
    assert winner == "current" and "100% (new) vs 20% (current)" in why


def test_the_chosen_editor_follows_the_measured_correction_rate(project):
    assert editor_turn.choose(_stats("base", 4), _stats("ours:v1", 2))[0] == "new"
    assert editor_turn.choose(_stats("base", 2), _stats("ours:v1", 4))[0] == "current"
    winner, why = editor_turn.choose(_stats("base", 2), _stats("ours:v1", 2, kept=8))
    assert winner == "new" and "identity pass rate" in why
    assert editor_turn.choose(_stats("base", 2), _stats("ours:v1", 2))[0] == "current"
    winner, why = editor_turn.choose(_stats("base", 2), _stats("ours:v1", 1, rejected=2))
    assert winner == "current" and "30% (new) vs 20% (current)" in why, "a reject counts like a correction"
    state = FlywheelState.load(project)
    entry = state.current([])
    entry["editor"]["chosen"], entry["finished"] = ["ours:v1"], "now"
    assert state.current([])["editor"]["used"] == ["ours:v1"], "the next turn enriches with the winner"


def test_resuming_in_the_middle_of_the_editor_flywheel(project, monkeypatch):
    """Killed while the editor LoRA trains: the rerun skips every finished stage and goes on from there."""
    calls = []

    def character(turn, state):
        calls.append("character")
        turn.entry["versions"]["enriched"] = "v1"
        turn.entry["images"]["pristine"] = 2
    monkeypatch.setattr(loop, "_character_flywheel", character)
    monkeypatch.setattr(editor_turn, "rerun_corrections", lambda turn, version: calls.append("reruns") or [])
    monkeypatch.setattr(editor_turn, "build_turn_triplets", lambda turn, v: calls.append("triplets") or ("v1", 12, []))

    def interrupted(turn, triplets):
        raise KeyboardInterrupt
    monkeypatch.setattr(editor_turn, "train_editor", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.run_flywheel(project, TurnConfig(), log=lambda _: None, max_turns=1)
    saved = json.loads(flywheel_path(project).read_text())["turns"][0]
    assert saved["done"][-2:] == ["corrections", "triplets"] and saved["finished"] is None

    monkeypatch.setattr(editor_turn, "train_editor", lambda turn, t: (calls.append("train") or "ours:v1", ["ok"]))
    monkeypatch.setattr(editor_turn, "compare_editors", lambda turn, lora, t: calls.append("compare") or {
        "chosen": ["ours:v1"], "why": "new editor: correction rate 10% (new) vs 30% (current)"})
    run = loop.run_flywheel(project, TurnConfig(), log=lambda _: None, max_turns=1)
    assert calls == ["character", "reruns", "triplets", "character", "train", "compare"]
    entry = json.loads(flywheel_path(project).read_text())["turns"][0]
    assert entry["editor"]["chosen"] == ["ours:v1"] and entry["finished"] and run.stop_reason.startswith("max_turns")


def test_too_few_triplets_skip_the_editor_lora_and_say_why(project, monkeypatch):
    monkeypatch.setattr(loop, "_character_flywheel", lambda turn, state: turn.entry["versions"].update(enriched="v1"))
    monkeypatch.setattr(editor_turn, "rerun_corrections", lambda turn, version: [])
    monkeypatch.setattr(editor_turn, "build_turn_triplets", lambda turn, v: ("v1", 4, []))
    loop.run_flywheel(project, TurnConfig(), log=lambda _: None, max_turns=1)
    editor = json.loads(flywheel_path(project).read_text())["turns"][0]["editor"]
    assert editor["trained"] is None and "4 triplets, fewer than 10 (editor.min_triplets)" in editor["why"]
    assert editor["chosen"] == []


def test_status_prints_the_stage_and_what_to_do(project, monkeypatch):
    runner = CliRunner()
    fresh = runner.invoke(cli, ["status", str(project.root)])
    assert fresh.exit_code == 0 and "no flywheel turn has run yet" in fresh.output
    monkeypatch.setattr(loop, "run_one_turn", _scripted([0.9]))
    loop.run_flywheel(project, TurnConfig(), log=lambda _: None)
    done = runner.invoke(cli, ["status", str(project.root)])
    assert done.exit_code == 0 and "stopped: target reached" in done.output and "turn 1:" in done.output


def test_config_errors_fail_before_anything_runs(tmp_path):
    path = tmp_path / "turn.yaml"
    path.write_text("models: {flux: ./no-such-flux}\nstop: {patience: 0}\n")
    Project.init(tmp_path / "p", name="Ada")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "p"), "--config", str(path)])
    assert result.exit_code != 0 and "stop.patience" in result.output
    path.write_text("models: {flux: ./no-such-flux}\n")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "p"), "--config", str(path)])
    assert result.exit_code != 0 and "models.flux" in result.output and "does not exist" in result.output
    path.write_text("editor: {min_triplet: 3}\n")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "p"), "--config", str(path)])
    assert "editor.min_triplet" in result.output
    assert not (tmp_path / "p" / "reports").exists()


def test_an_editor_lora_that_fails_to_train_is_reported_and_the_turn_keeps_its_editor(project, monkeypatch):
    config = TurnConfig.model_validate({"models": {"edit_loras": ["angles.safetensors"]}})
    monkeypatch.setattr(loop, "_character_flywheel", lambda turn, state: turn.entry["versions"].update(enriched="v1"))
    monkeypatch.setattr(editor_turn, "rerun_corrections", lambda turn, version: [])
    monkeypatch.setattr(editor_turn, "build_turn_triplets", lambda turn, v: ("v1", 12, []))
    monkeypatch.setattr(editor_turn, "train_editor", lambda turn, t: (None, ["editor LoRA v1 did not finish (error: "
                                                                            "out of memory); this turn keeps the "
                                                                            "previous editor"]))
    monkeypatch.setattr(editor_turn, "compare_editors", lambda *a: pytest.fail("nothing to compare"))
    run = loop.run_flywheel(project, config, log=lambda _: None, max_turns=1)
    entry = json.loads(flywheel_path(project).read_text())["turns"][0]
    assert "out of memory" in entry["editor"]["why"] and entry["editor"]["chosen"] == ["angles.safetensors"]
    assert "compare editors" in entry["done"] and run.stop_reason.startswith("max_turns")


def test_iterate_off_runs_one_turn_only(project, monkeypatch):
    monkeypatch.setattr(loop, "run_one_turn", _scripted([0.1, 0.2]))
    config = TurnConfig.model_validate({"iterate": {"train_next": False}})
    run = loop.run_flywheel(project, config, log=lambda _: None)
    assert len(run.turns) == 1 and run.stop_reason.startswith("iterate.train_next is false")
