"""The README's promises: CI installs and tests exactly as the README says (the demo itself:
tests/turn/test_flywheel_demo.py)."""

from __future__ import annotations

import re
from pathlib import Path

import flenwheel

ROOT = Path(flenwheel.__file__).resolve().parent


def _code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    install, test = _code_blocks(readme)[:2]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    steps = install.splitlines()
    assert steps[0].startswith("git clone ") and " && cd " in steps[0]  # a newcomer starts from nothing
    assert steps[1].startswith("python3 -m venv ")  # externally managed Pythons refuse pip outside one
    assert next(line for line in steps if line.startswith("pip install ")) in ci
    assert steps[-1] == "flenwheel demo demo-out"
    assert test in ci
