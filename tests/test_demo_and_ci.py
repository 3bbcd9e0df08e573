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
    assert install.split(" && flenwheel demo")[0] in ci
    assert test in ci
