"""The enrichment benchmark keeps running: both modes on tiny models (slow: it starts two processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "enrich_throughput.py"


def _run(*args: str, cache: Path) -> str:
    env = dict(os.environ, TMPDIR=str(cache))
    if ROOT.name == "flenwheel":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT.parent), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_benchmark_prints_throughput_and_memory(tmp_path):
    engine = _run("--sources", "2", "--per-source", "2", "--cache", str(tmp_path / "models"), cache=tmp_path)
    assert "edits            4 (2 sources x 2)" in engine
    assert "s/edit (model)" in engine and "peak RSS" in engine
    full = _run("--full-size", "--tiny", "--edits", "1", cache=tmp_path)
    assert "bf16" in full and "nf4                      skipped: needs CUDA" in full
