"""``flenwheel run`` with a person's decisions file: it stops where decisions are missing, and each
rerun resumes instead of redoing finished work, until the turn completes."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.project import Project
from flenwheel.core.turn.demo import demo_config


def _decide_all(project: Project, stage: str, label: str, path, reason=None):
    dataset_stage = "enriched" if stage == "enriched" else "synthetic"
    decisions = yaml.safe_load(path.read_text()) if path.exists() else {}
    verdict = {"label": label, "reason": reason} if reason else label
    version = project.latest_version(dataset_stage)
    decisions.setdefault(stage, {})[version] = {r.filename: verdict for r in project.dataset(dataset_stage).records}
    path.write_text(yaml.safe_dump(decisions))


@pytest.mark.slow
def test_run_with_a_decisions_file_stops_then_resumes_to_the_end(tmp_path, tiny_flux, tiny_qwen_edit):
    config = demo_config({"flux": tiny_flux, "qwen-edit": tiny_qwen_edit}).model_dump(mode="json")
    config["benchmark"]["enabled"] = False
    config["iterate"]["train_next"] = False
    config_path, decisions = tmp_path / "turn.yaml", tmp_path / "decisions.yaml"
    config_path.write_text(yaml.safe_dump(config))
    decisions.write_text("{}\n")
    Project.init(tmp_path / "p", name="Ada")
    args = ["run", str(tmp_path / "p"), "--config", str(config_path), "--decisions", str(decisions)]

    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 1 and "28 images of enriched/v1 have no decision" in first.output
    project = Project.open(tmp_path / "p")
    _decide_all(project, "enriched", "good", decisions)

    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 1 and "have no decision" in second.output
    assert "0 new edits, 28 resumed" in second.output
    assert (project.root / "models/flux_lora/char_v1/char_lora_v1.safetensors").is_file()
    _decide_all(project, "synthetic", "pristine", decisions)

    third = CliRunner().invoke(cli, [*args, "--json"])
    assert third.exit_code == 0, third.output
    report = json.loads(third.output[third.output.index("{\n"):])
    assert report["auto_review"] is False
    assert report["stages"]["train char_v1"] == [
        f"char_v1: already trained -> {project.root / 'models/flux_lora/char_v1/char_lora_v1.safetensors'}"]
    assert report["stages"]["iterate"][0].startswith("char_v2 prepared:")
    assert (project.root / "models/flux_lora/char_v2/training_set.json").is_file()
    assert not (project.root / "models/flux_lora/char_v2/char_lora_v2.safetensors").exists()
