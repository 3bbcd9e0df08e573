"""``gpu_check.py --record``: measured figures land next to the registry's estimates, row by row."""

from __future__ import annotations

import sys
from pathlib import Path

from flenwheel.core.models import registry
from flenwheel.core.models.registry import CHARACTER, EDITOR, default_family
from flenwheel.core.turn.presets import memory_table, row_status

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import gpu_check  # noqa: E402


def test_recorded_rows_turn_the_matching_preset_rows_from_estimate_to_measured(tmp_path, monkeypatch):
    rows = [
        {"stage": "train FLUX.1-dev", "case": "1024 px, rank 16", "mode": "fp8 + grad ckpt", "peak_gib": 17.26,
         "s_per_step": 2.1, "unit": "s/step"},
        {"stage": "enrich (Qwen-Image-Edit-2509)", "case": "1024x1024, 8 steps, true CFG 4", "mode": "bf16",
         "peak_gib": 61.0, "s_per_image": 9.5, "unit": "s/image"},
        {"stage": "train FLUX.1-dev", "case": "1024 px, rank 16", "mode": "offload", "skipped": "no offload"},
    ]
    path = tmp_path / "memory_measured.json"
    assert gpu_check.record_figures(rows, "NVIDIA H100 80GB HBM3", path) == 2
    assert gpu_check.record_figures(rows, "NVIDIA H100 80GB HBM3", path) == 2  # a rerun replaces, never duplicates
    monkeypatch.setattr(registry, "MEASURED_FILE", path)
    flux, qwen = default_family(CHARACTER), default_family(EDITOR)
    assert row_status(flux, flux.memory.preset(24)) == (
        "load estimate; train measured 17.3 GiB peak, 2.10 s/step on NVIDIA H100 80GB HBM3 (fits)")
    assert row_status(qwen, qwen.memory.preset(80)).startswith(
        "load measured 61.0 GiB peak, 9.50 s/image on NVIDIA H100 80GB HBM3 (fits)")
    assert row_status(flux, flux.memory.preset(16)) == "load estimate; train estimate"  # other options: estimate
    assert "train measured 17.3 GiB peak" in memory_table()


def test_z_image_rows_measure_its_own_preset_rows(tmp_path, monkeypatch):
    """The Z-Image rows record under the family's own name, so its preset rows turn measured too."""
    rows = [{"stage": "train Z-Image (Base)", "case": "1024 px, rank 16", "mode": "fp8 + grad ckpt",
             "peak_gib": 12.5, "s_per_step": 1.1, "unit": "s/step"},
            {"stage": "generate (Z-Image-Turbo)", "case": "1024x1024, 8 steps, guidance 0", "mode": "offload",
             "peak_gib": 13.2, "s_per_image": 2.4, "unit": "s/image"}]
    path = tmp_path / "memory_measured.json"
    assert gpu_check.record_figures(rows, "NVIDIA H100 80GB HBM3", path) == 2
    monkeypatch.setattr(registry, "MEASURED_FILE", path)
    z_image = registry.family("z-image")
    assert row_status(z_image, z_image.memory.preset(16)) == (
        "load estimate; train measured 12.5 GiB peak, 1.10 s/step on NVIDIA H100 80GB HBM3 (fits)")
    assert row_status(z_image, z_image.memory.preset(24)) == (
        "load measured 13.2 GiB peak, 2.40 s/image on NVIDIA H100 80GB HBM3 (fits); train estimate")
