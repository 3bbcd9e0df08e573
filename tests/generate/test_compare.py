"""The LoRA comparison grid: column specs, same seeds across columns, the saved grid and its sidecar."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from flenwheel.core.data.errors import FlenwheelError, ModelLoadError
from flenwheel.core.data.images import read_png_record
from flenwheel.core.generate.compare import compare_loras, labelled_grid, parse_columns, save_comparison
from flenwheel.core.generate.generate import generate_one
from flenwheel.core.generate.prompt_sets import plan_run


def test_column_specs(lora_project, tiny_loras):
    columns = parse_columns(
        ["char_v1", "char_v2:0.5,1", f"char_v1:0.7 + {tiny_loras['v2']}:0.3", "", "base"], lora_project
    )
    assert [c.label for c in columns] == [
        "char_v1 @1",
        "char_v2 @0.5",
        "char_v2 @1",
        "char_v1 @0.7 + char_lora_v2 @0.3",
        "base",
    ]
    assert [[s.strength for s in c.loras] for c in columns] == [[1.0], [0.5], [1.0], [0.7, 0.3], []]
    assert columns[0].loras[0].path.endswith("char_v1/char_lora_v1.safetensors")
    with pytest.raises(ModelLoadError, match="char_v9"):
        parse_columns(["char_v9"], lora_project)
    with pytest.raises(FlenwheelError, match="nothing to compare"):
        parse_columns(["", " "], lora_project)


def test_grid_uses_the_same_seeds_in_every_column(flux, lora_project, tiny_run, tmp_path):
    rows = plan_run(lora_project, ids=["front", "t-pose"], variants=2, run_settings=tiny_run)[1]
    columns = parse_columns(["char_v1:0", "char_v1", "base"], lora_project)
    seen = []
    result = compare_loras(flux, columns, rows, cell_size=64, on_cell=lambda d, t, i: seen.append((d, t)))
    assert seen[-1] == (12, 12) and len(result.cells) == 4 and all(len(row) == 3 for row in result.cells)
    for row, item in zip(result.cells, rows, strict=True):
        assert {cell.fields["seed"] for cell in row} == {item.seed}
        strength0, full, base = (np.asarray(cell.image, dtype=np.int16) for cell in row)
        assert np.array_equal(strength0, base) and np.abs(full - base).max() > 0
    alone = generate_one(flux.with_loras([]), rows[0].prompt, rows[0].seed, 32, 32, 2)
    assert alone.image.tobytes() == result.cells[0][2].image.tobytes()
    assert result.grid.size[0] > 3 * 64 and result.grid.size[1] > 4 * 64
    assert "char_v1 @1" in result.legend() and f"seed {rows[1].seed}" in result.legend()

    path = save_comparison(result, out=tmp_path / "grid")
    assert path.suffix == ".png" and Image.open(path).size == result.grid.size
    assert read_png_record(path)["comparison"]["rows"][0]["seed"] == rows[0].seed
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert [c["label"] for c in sidecar["columns"]] == ["char_v1 @0", "char_v1 @1", "base"]
    assert sidecar["cells"][0][1]["loras"][0]["sha256"]
    default = save_comparison(result, lora_project)
    assert default.parent == lora_project.benchmarks_dir / "comparisons" and default.is_file()
    assert save_comparison(result, lora_project) != default


def test_labelled_grid_layout():
    red, blue = Image.new("RGB", (40, 20), (255, 0, 0)), Image.new("RGB", (20, 40), (0, 0, 255))
    grid = labelled_grid(
        [[red, blue]], ["a very long column label that must wrap", "b"], ["row"], cell_size=100
    )
    pixels = np.asarray(grid)
    assert (pixels == (255, 0, 0)).all(axis=-1).sum() > 0 and (pixels == (0, 0, 255)).all(axis=-1).sum() > 0
    assert grid.width >= 2 * 100 and grid.height >= 100
