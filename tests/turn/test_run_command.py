"""``flenwheel run`` with a person's decisions file: it stops where decisions are missing, each rerun
resumes instead of redoing finished work, and a card that passes at turn 2 stops the loop there."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.project import Project


def _decide_all(project: Project, stage: str, label: str, path):
    decisions = yaml.safe_load(path.read_text()) or {}
    dataset_stage = {"enriched": "enriched", "synthetic": "synthetic", "benchmark": "benchmark"}[stage]
    version = project.latest_version(dataset_stage)
    decisions.setdefault(stage, {})[version] = {r.filename: label for r in project.dataset(dataset_stage).records}
    path.write_text(yaml.safe_dump(decisions))


@pytest.mark.slow
def test_a_decisions_file_that_passes_the_card_at_turn_two_stops_the_loop_there(tmp_path, small_config):
    config = small_config.model_dump(mode="json")
    config["editor"]["enabled"] = False
    config["benchmark"]["checks"] = ["resolution"]
    config["stop"] = {"max_turns": 4}
    config_path, decisions = tmp_path / "turn.yaml", tmp_path / "decisions.yaml"
    config_path.write_text(yaml.safe_dump(config))
    decisions.write_text("{}\n")
    Project.init(tmp_path / "p", name="Ada")
    args = ["run", str(tmp_path / "p"), "--config", str(config_path), "--decisions", str(decisions)]
    runner = CliRunner()

    first = runner.invoke(cli, args)
    assert first.exit_code == 1 and "6 images of enriched/v1 have no decision" in first.output
    project = Project.open(tmp_path / "p")
    _decide_all(project, "enriched", "good", decisions)
    second = runner.invoke(cli, args)
    assert second.exit_code == 1 and "have no decision" in second.output
    assert (project.root / "models/flux_lora/char_v1/char_lora_v1.safetensors").is_file()
    status = runner.invoke(cli, ["status", str(project.root)])
    assert status.exit_code == 0 and "at stage 'review synthetic'" in status.output
    assert "stage=synthetic&version=v1" in status.output
    _decide_all(project, "synthetic", "pristine", decisions)

    third = runner.invoke(cli, args)
    assert third.exit_code == 1 and "images of enriched/v2 have no decision" in third.output
    turn1 = json.loads((project.root / "reports/flywheel.json").read_text())["turns"][0]
    assert turn1["first_try"]["verified"] == 0 and turn1["first_try"]["unverified"] == 1, \
        "with nothing failed but no verdict on the expression, the cell is unverified, not a success"
    _decide_all(project, "enriched", "good", decisions)
    fourth = runner.invoke(cli, args)
    assert fourth.exit_code == 1 and "have no decision" in fourth.output
    _decide_all(project, "synthetic", "pristine", decisions)
    card = yaml.safe_load(decisions.read_text())
    card["benchmark"] = {"latest": {r.filename: "correct" for r in project.dataset("benchmark", "v1").records}}
    decisions.write_text(yaml.safe_dump(card))

    fifth = runner.invoke(cli, args)
    assert fifth.exit_code == 0, fifth.output
    data = json.loads((project.root / "reports/flywheel.json").read_text())
    assert [t["turn"] for t in data["turns"]] == [1, 2]
    assert data["turns"][1]["first_try"]["verified"] == 1
    assert data["stopped"]["reason"].startswith("target reached") and "at turn 2" in data["stopped"]["reason"]
    assert "the flywheel stopped: target reached" in fifth.output
