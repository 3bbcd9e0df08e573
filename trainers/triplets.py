"""Reading editor triplets for training: the lines of ``core/data/triplet_file.py``, with every image present."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.data.errors import DatasetError
from ..core.data.triplet_file import TRIPLETS_FILE, TripletLine, line_problems, read_lines

__all__ = ["TRIPLETS_FILE", "Triplet", "read_triplets"]



@dataclass(frozen=True)
class Triplet:
    target: Path
    controls: tuple[Path, ...]
    caption: str
    line: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def read_triplets(path: str | Path) -> list[Triplet]:
    """Parse and check a triplets file; every problem names the line, and missing images are listed."""
    file, lines = read_lines(path)
    triplets: list[Triplet] = []
    missing: list[str] = []
    for number, raw in lines:
        problems = line_problems(raw)
        if problems:
            raise DatasetError(f"{file} line {number} {problems[0]}")
        line = TripletLine.model_validate(raw)
        paths = line.paths(file.parent)
        missing += [f"line {number}: {p}" for p in paths if not p.is_file()]
        triplets.append(Triplet(paths[0], tuple(paths[1:]), line.caption.strip(), number, line.extra))
    if missing:
        raise DatasetError(f"{file}: {len(missing)} image(s) missing: " + "; ".join(missing[:10]))
    if not triplets:
        raise DatasetError(f"{file} holds no triplets")
    return triplets
