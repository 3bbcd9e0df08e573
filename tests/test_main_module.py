"""The CLI runs from ComfyUI's own interpreter, where the install never created a ``flenwheel`` script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_python_m_flenwheel_from_custom_nodes_prints_the_cli_help():
    result = _run(["-m", PACK.name, "--help"], cwd=PACK.parent)
    assert result.returncode == 0, result.stderr
    assert "turn 10-20 photos" in result.stdout
    assert "source" in result.stdout and "review" in result.stdout


def test_python_with_the_pack_folder_runs_the_cli_from_any_directory(tmp_path):
    result = _run([str(PACK), "source", "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: flenwheel source" in result.stdout
