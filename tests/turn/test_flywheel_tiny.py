"""The loop on the tiny random-weight models: one whole turn of both flywheels, with auto-review.

Kept small enough for the default suite (3 sources, a one-cell card, a handful of trainer steps);
the full two-turn demo is test_flywheel_demo.py (slow).
"""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.project import Project
from flenwheel.core.turn.loop import run_flywheel


def test_one_turn_of_both_flywheels_on_tiny_models(tmp_path, small_config):
    project = Project.init(tmp_path / "p", name="Ada")
    lines: list[str] = []
    run = run_flywheel(project, small_config, auto=True, log=lines.append)
    data = json.loads((project.root / "reports/flywheel.json").read_text())
    turn = data["turns"][0]
    assert data["auto_review"] is True and run.stop_reason == "max_turns reached (1)"
    assert turn["char_lora"] == "char_v1" and turn["first_try"]["cells"] == 1
    assert turn["first_try"]["verified"] == 0, "noise from tiny models never verifies a cell"
    assert turn["images"]["enriched"] == 6 and turn["images"]["triplets"] >= 1
    assert (project.root / "data/qwen_training/v1/triplets.jsonl").is_file()
    assert list((project.root / "models/qwen_lora/v1").glob("*.safetensors")), turn["editor"]
    assert turn["editor"]["trained"] == "ours:v1" and turn["editor"]["why"]
    assert set(turn["seconds"]) >= {"enrich", "train character", "model card", "train editor", "compare editors"}
    assert (project.root / "reports/flywheel.png").is_file()
    page = (project.root / "reports/flywheel.html").read_text()
    assert "ours:v1" in page and "auto-review (demo only, not a human)" in page
    # every report of the turn is recorded and linked, the editor LoRA's loss curve included
    reports = turn["reports"]
    assert reports["loss editor v1"] == "models/qwen_lora/v1/loss.png"
    assert (project.root / reports["loss editor v1"]).read_bytes()[:4] == b"\x89PNG"
    for name in ("model card char_v1", "loss char_v1", "editor comparison turn1 table",
                 "editor comparison turn1 chart"):
        assert (project.root / reports[name]).is_file() and f'href="../{reports[name]}"' in page, name
    assert (project.root / reports["editor comparison turn1 table"]).read_text().startswith("**")  # auto-review
    # the enrichment's identity figure is the one its console summary printed
    kept, checked = map(int, re.search(r"identity: (\d+)/(\d+) edits kept", "\n".join(lines)).groups())
    assert turn["identity_pass_rate"]["enrichment"] == round(kept / checked, 4)
    status = CliRunner().invoke(cli, ["status", str(project.root)])
    assert status.exit_code == 0 and "stopped: max_turns reached (1)" in status.output
