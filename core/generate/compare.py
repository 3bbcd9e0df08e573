"""Side-by-side comparison of LoRAs or strengths: the same prompts and seeds, one labelled grid.

This is what a user looks at to judge an iteration: character LoRA v1 next to v2, or one LoRA at
0.6 / 0.8 / 1.0, or with and without a style LoRA. Columns are LoRA settings, rows are (prompt,
seed) pairs; every column renders every row with the same seed, so differences come from the
LoRAs alone. Columns run one after another, so each LoRA switch happens once and the base model
is never reloaded.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..data.atomic import atomic_write_json
from ..data.errors import FlenwheelError
from ..data.images import save_png
from ..data.project import Project
from ..data.records import utc_now
from ..data.text_lists import split_list
from ..models.character_lora import parse_lora_ref
from ..models.loras import LoraSpec, parse_lora
from ..models.pipelines import PipelineHandle
from .generate import Generated, StepCallback, generate_batch
from .prompt_sets import PlannedImage

BASE_WORDS = ("base", "none", "no lora")
BACKGROUND = (30, 30, 30)
TEXT = (235, 235, 235)

CellCallback = Callable[[int, int, Image.Image], None]


@dataclass(frozen=True)
class Column:
    """One column of the grid: a label and the LoRAs (with strengths) it renders with."""

    label: str
    loras: tuple[LoraSpec, ...]


def _short(ref: str) -> str:
    return Path(ref).stem if ref.lower().endswith(".safetensors") else ref


def parse_columns(
    texts: Sequence[str], project: Project | None = None, lookup: Callable[[str], str | None] | None = None
) -> list[Column]:
    """Column specs to columns.

    ``char_v1`` or ``char_v1:0.8`` is one LoRA; ``char_v2:0.8 + film.safetensors:0.5`` stacks
    LoRAs; ``char_v2:0.6,0.8,1.0`` is a strength sweep (one column per strength); ``base`` is the
    model without LoRAs.
    """
    columns: list[Column] = []
    for text in (t.strip() for t in texts):
        if not text:
            continue
        if text.lower() in BASE_WORDS:
            columns.append(Column("base", ()))
            continue
        parts = [part.strip() for part in text.split("+")]
        head, sep, tail = parts[0].rpartition(":")
        if len(parts) == 1 and sep and "," in tail:
            for strength in split_list(tail):
                spec = parse_lora_ref(f"{head}:{strength}", project, lookup)
                columns.append(Column(f"{_short(head)} @{spec.strength:g}", (spec,)))
            continue
        specs = tuple(parse_lora_ref(part, project, lookup) for part in parts)
        names = [_short(parse_lora(part).path) for part in parts]
        columns.append(
            Column(" + ".join(f"{n} @{s.strength:g}" for n, s in zip(names, specs, strict=True)), specs)
        )
    if not columns:
        raise FlenwheelError("nothing to compare: give at least one column (e.g. char_v1, char_v2:0.8, base)")
    return columns


@dataclass
class Comparison:
    grid: Image.Image
    columns: list[Column]
    rows: list[PlannedImage]
    cells: list[list[Generated]]

    def legend(self) -> str:
        lines = [f"columns: {' | '.join(c.label for c in self.columns)}"]
        lines += [
            f"row {i + 1}: {row.prompt_id} seed {row.seed}: {row.prompt}" for i, row in enumerate(self.rows)
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": utc_now(),
            "columns": [{"label": c.label, "loras": [vars(s) for s in c.loras]} for c in self.columns],
            "rows": [{"prompt_id": r.prompt_id, "prompt": r.prompt, "seed": r.seed} for r in self.rows],
            "cells": [[cell.fields for cell in row] for row in self.cells],
        }


def compare_loras(
    handle: PipelineHandle,
    columns: Sequence[Column],
    rows: Sequence[PlannedImage],
    cell_size: int = 384,
    on_cell: CellCallback | None = None,
    step_callback: StepCallback | None = None,
) -> Comparison:
    """Render every row with every column's LoRAs (same seeds) and lay them out in a labelled grid."""
    if not rows:
        raise FlenwheelError("nothing to compare: no prompts selected")
    total = len(rows) * len(columns)
    cells: list[list[Generated | None]] = [[None] * len(columns) for _ in rows]
    for c, column in enumerate(columns):
        view = handle.with_loras(column.loras)
        for r, row in enumerate(rows):
            result = generate_batch(view, [row.prompt], [row.seed], row.settings, step_callback)[0]
            cells[r][c] = result
            if on_cell is not None:
                on_cell(c * len(rows) + r + 1, total, result.image)
    done = [[cell for cell in row if cell is not None] for row in cells]
    grid = labelled_grid(
        [[cell.image for cell in row] for row in done],
        [c.label for c in columns],
        [f"{row.prompt_id}\nseed {row.seed}" for row in rows],
        cell_size,
    )
    return Comparison(grid=grid, columns=list(columns), rows=list(rows), cells=done)


def _wrap(text: str, font: Any, width: int, lines: int) -> str:
    """Wrap to ``width`` pixels in at most ``lines`` lines, cutting the end with an ellipsis."""
    per_line = max(4, int(width / max(1.0, font.getlength("n"))))
    wrapped = [w for part in text.split("\n") for w in (textwrap.wrap(part, per_line) or [""])]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: per_line - 1] + "…"
    return "\n".join(wrapped)


def labelled_grid(
    images: list[list[Image.Image]],
    column_labels: Sequence[str],
    row_labels: Sequence[str],
    cell_size: int = 384,
) -> Image.Image:
    """Rows x columns of images, each fitted into a square cell, with labels on top and on the left."""
    font = ImageFont.load_default(size=max(11, cell_size // 18))
    line = int(font.size * 1.3)
    pad = max(4, cell_size // 48)
    header, side = 2 * line + 2 * pad, max(cell_size // 2, 96)
    width = side + len(column_labels) * (cell_size + pad) + pad
    height = header + len(row_labels) * (cell_size + pad) + pad
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(column_labels):
        x = side + c * (cell_size + pad) + pad
        draw.multiline_text((x, pad), _wrap(label, font, cell_size, 2), font=font, fill=TEXT, spacing=2)
    for r, label in enumerate(row_labels):
        y = header + r * (cell_size + pad)
        draw.multiline_text((pad, y), _wrap(label, font, side - 2 * pad, 4), font=font, fill=TEXT, spacing=2)
        for c, image in enumerate(images[r]):
            tile = ImageOps.pad(
                image.convert("RGB"), (cell_size, cell_size), Image.Resampling.LANCZOS, color=BACKGROUND
            )
            sheet.paste(tile, (side + c * (cell_size + pad) + pad, y))
    return sheet


def save_comparison(
    comparison: Comparison, project: Project | None = None, out: str | Path | None = None
) -> Path:
    """Write the grid PNG (carrying its legend) and a JSON sidecar with every cell's record fields."""
    if out is None:
        if project is None:
            raise FlenwheelError("give an output file or a project to save the comparison in")
        folder = project.benchmarks_dir / "comparisons"
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = next(
            folder / name
            for i in range(1000)
            if not (folder / (name := f"compare_{stamp}{f'_{i}' if i else ''}.png")).exists()
        )
    target = Path(out).expanduser()
    if target.suffix.lower() != ".png":
        target = target.with_suffix(".png")
    data = comparison.to_json()
    save_png(comparison.grid, target, {"comparison": {"columns": data["columns"], "rows": data["rows"]}})
    atomic_write_json(target.with_suffix(".json"), json.loads(json.dumps(data, default=str)))
    return target
