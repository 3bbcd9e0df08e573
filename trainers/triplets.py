"""Reading editor triplets: the musubi-tuner JSONL layout that TripletWriter produces.

One JSON object per line: ``image_path`` (the corrected target), ``control_path`` (the source;
``control_path_0``, ``control_path_1``... for more sources), ``caption`` (the edit prompt), plus our
``issue``/``improvement`` fields and lineage ids, which are kept but not needed for training.
Relative paths are relative to the JSONL file's folder, so a dataset folder can be moved or copied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.data.errors import DatasetError

TRIPLETS_FILE = "triplets.jsonl"
_CONTROL_KEY = re.compile(r"^control_path(?:_(\d+))?$")


@dataclass(frozen=True)
class Triplet:
    target: Path
    controls: tuple[Path, ...]
    caption: str
    line: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _control_paths(obj: dict[str, Any]) -> list[str]:
    """``control_path`` first, then ``control_path_0``, ``_1``... in numeric order."""
    found: list[tuple[int, str]] = []
    for key, value in obj.items():
        match = _CONTROL_KEY.match(key)
        if match and value:
            found.append((-1 if match.group(1) is None else int(match.group(1)), value))
    return [value for _, value in sorted(found)]


def read_triplets(path: str | Path) -> list[Triplet]:
    """Parse and check a triplets file; every problem names the line, and missing images are listed."""
    file = Path(path)
    if file.is_dir():
        file = file / TRIPLETS_FILE
    if not file.is_file():
        raise DatasetError(f"no triplets file at {file}; create triplets with the TripletWriter step first")
    base = file.parent
    triplets: list[Triplet] = []
    missing: list[str] = []
    for number, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{file} line {number} is not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{file} line {number} must be a JSON object")
        target, caption, controls = obj.get("image_path"), obj.get("caption"), _control_paths(obj)
        if not isinstance(target, str) or not target:
            raise DatasetError(f"{file} line {number} has no image_path (the corrected target image)")
        if not controls or not all(isinstance(c, str) for c in controls):
            raise DatasetError(f"{file} line {number} has no control_path (the source image to edit)")
        if not isinstance(caption, str) or not caption.strip():
            raise DatasetError(f"{file} line {number} has no caption (the edit prompt)")
        paths = [(base / p) if not Path(p).is_absolute() else Path(p) for p in (target, *controls)]
        missing += [f"line {number}: {p}" for p in paths if not p.is_file()]
        extra = {
            k: v for k, v in obj.items() if k != "image_path" and k != "caption" and not _CONTROL_KEY.match(k)
        }
        triplets.append(Triplet(paths[0], tuple(paths[1:]), caption.strip(), number, extra))
    if missing:
        raise DatasetError(f"{file}: {len(missing)} image(s) missing: " + "; ".join(missing[:10]))
    if not triplets:
        raise DatasetError(f"{file} holds no triplets")
    return triplets
