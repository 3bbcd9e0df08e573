"""The README's promises: the demo runs offline, and CI installs and tests exactly as the README says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import flenwheel
from flenwheel.core.turn.demo import run_demo

ROOT = Path(flenwheel.__file__).resolve().parent


def test_demo_runs_one_whole_turn_offline(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "out", log=lines.append)
    report = json.loads((result.project / "reports" / "turn_report.json").read_text())
    assert report["auto_review"] is True
    stages = report["stages"]
    for stage in ("sources", "enrich", "review enriched", "train char_v1", "generate", "filter",
                  "review synthetic", "benchmark char_v1", "train char_v2", "benchmark char_v2", "compare"):
        assert stage in stages, stage
    assert any("made by --auto-review" in line for line in stages["review enriched"])
    assert "first try: 0/23 = 0%" in " ".join(stages["benchmark char_v1"])
    for path in result.reports.values():
        assert Path(path).exists(), path
    for version in ("v1", "v2"):
        loss = Path(result.reports[f"loss char_{version}"])
        assert loss == result.project / f"models/flux_lora/char_{version}/loss.png"
        assert loss.read_bytes()[:4] == b"\x89PNG"
        assert len(list(Path(result.reports[f"samples char_{version}"]).glob("step_*.png"))) >= 2
        assert f"loss char_{version}: {loss}" in stages[f"train char_{version}"]
    card_page = (result.project / "benchmarks/char_v1/report.html").read_text()
    assert "<h2>Training</h2>" in card_page and "alt='loss curve'" in card_page and "step_000030" in card_page
    assert (result.project / "models/flux_lora/char_v2/char_lora_v2.safetensors").is_file()
    assert result.config.is_file()
    assert any("produce noise" in line for line in lines)
    assert result.seconds < 300


def _code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    install, test = _code_blocks(readme)[:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install.split(" && flenwheel demo")[0] in ci
    assert test in ci
