"""The README's promises: the demo runs offline, and CI installs and tests exactly as the README says."""

from __future__ import annotations

import re
from pathlib import Path

import flenwheel
from flenwheel.core.demo import run_demo

ROOT = Path(flenwheel.__file__).resolve().parent


def test_demo_builds_a_checked_project_offline(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "out", log=lines.append)
    assert (result.project / "flenwheel.json").is_file()
    assert any(line.startswith("PASS usable images >= 10") for line in result.summary)
    assert "manifests verified" in result.summary
    for path in result.outputs.values():
        assert Path(path).is_file()
    assert any("outputs are noise" in line for line in lines)


def _code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    install, test = _code_blocks(readme)[:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install.split(" && flenwheel demo")[0] in ci
    assert test in ci
