"""``flenwheel demo OUT``: two whole turns of both flywheels offline, and every artifact of both loops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.turn.demo import run_demo


@pytest.mark.slow
def test_the_demo_runs_two_whole_turns_of_both_flywheels(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "out", log=lines.append)
    project = result.project
    data = json.loads((project / "reports/flywheel.json").read_text())
    assert [t["turn"] for t in data["turns"]] == [1, 2] and data["auto_review"] is True
    assert data["stopped"]["reason"] == "max_turns reached (2)"
    assert [t["char_lora"] for t in data["turns"]] == ["char_v1", "char_v2"]
    assert (project / "data/qwen_training/v1/triplets.jsonl").is_file()
    assert list((project / "models/qwen_lora/v1").glob("*.safetensors"))
    first = data["turns"][0]
    assert first["editor"]["trained"] == "ours:v1" and first["editor"]["comparison"]["figures"]
    assert data["turns"][1]["editor"]["used"] == first["editor"]["chosen"], "turn 2 enriches with the winner"
    for name in ("flywheel.html", "flywheel.png"):
        assert (project / "reports" / name).is_file()
    for benchmark in ("char_v1", "char_v2"):
        assert (project / "benchmarks" / benchmark / "results.json").is_file()
    for path in result.reports.values():
        assert Path(path).exists(), path
    for version in ("v1", "v2"):
        loss = Path(result.reports[f"loss char_{version}"])
        assert loss == project / f"models/flux_lora/char_{version}/loss.png"
        assert loss.read_bytes()[:4] == b"\x89PNG"
        assert len(list(Path(result.reports[f"samples char_{version}"]).glob("step_*.png"))) >= 2
    card_page = (project / "benchmarks/char_v1/report.html").read_text()
    assert "<h2>Training</h2>" in card_page and "alt='loss curve'" in card_page
    config_text = result.config.read_text()
    assert "demo only; real run: dtype: bf16" in config_text and "flenwheel init PROJECT --gpu" in config_text
    assert data["turns"][0]["reports"]["loss editor v1"] == "models/qwen_lora/v1/loss.png"
    assert any(line.startswith("time per stage") for line in lines)
    assert any("produce noise" in line for line in lines)
    status = CliRunner().invoke(cli, ["status", str(project)])
    assert status.exit_code == 0 and "stopped: max_turns reached (2)" in status.output
    assert result.seconds < 180
