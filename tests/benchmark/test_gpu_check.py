"""The prepared GPU check keeps running: ``benchmarks/gpu_check.py --tiny`` on the CPU, table and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_gpu_check_tiny_writes_one_table_and_its_json(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), OMP_NUM_THREADS="1")
    env.pop("OUT", None)
    if ROOT.name == "flenwheel":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT.parent), env.get("PYTHONPATH")]))
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--out", str(out)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = report["rows"]
    assert report["tiny"] is True and report["goals_gib"] == {"flux-1024": 10.0, "qwen-edit": 20.0, "enrich": 16.0}
    stages = {row["stage"] for row in rows}
    assert stages == {"train FLUX.1-dev", "train Qwen-Image-Edit-2509", "train FLUX.2 [klein] 4B",
                      "train Z-Image (Base)", "enrich (Qwen-Image-Edit-2509)", "generate (FLUX.1-dev)",
                      "generate (Z-Image-Turbo)"}
    measured = [row for row in rows if "skipped" not in row and "error" not in row]
    assert {row["stage"] for row in measured} == stages  # every stage ran its bf16/fp32 path for real
    assert all(row.get("s_per_step", 0) > 0 for row in measured)
    assert {row["case"] for row in rows if row["stage"] == "train FLUX.1-dev"} == {"64 px, rank 4", "128 px, rank 4"}
    assert all(row["meets_goal"] is None for row in rows)  # no verdict from tiny configs
    ran = {(row["stage"], row["mode"]) for row in measured}
    for stage in ("train FLUX.1-dev", "train Qwen-Image-Edit-2509", "train FLUX.2 [klein] 4B",
                  "train Z-Image (Base)"):  # the trainer's memory options
        modes = ("fp8 + grad ckpt", "bf16 + grad ckpt + swap", "fp8 + grad ckpt + swap")
        assert {(stage, mode) for mode in modes} <= ran
    for stage in ("enrich (Qwen-Image-Edit-2509)", "generate (FLUX.1-dev)",
                  "generate (Z-Image-Turbo)"):  # the loaders' fp8 and group offload
        assert {(stage, mode) for mode in ("fp8", "group", "fp8 + group")} <= ran
    table = done.stdout
    assert "FLENwheel GPU check on CPU" in table and "<= 10 GiB" in table and "<= 16 GiB" in table
    assert table.count("\n") >= len(rows) + 1
