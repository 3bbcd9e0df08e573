"""The triplets file (``triplets.jsonl``): one model of a line, read by the trainer and the checker.

One JSON object per line, the musubi-tuner layout: ``image_path`` (the corrected target),
``control_path`` (the source; ``control_path_0``, ``control_path_1``... for more sources),
``caption`` (the edit prompt), plus our ``issue``/``improvement`` fields and lineage ids, which
are kept but not needed for training. Relative paths are relative to the file's folder, so a
dataset folder can be moved or copied; absolute paths are allowed for hand-written files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import DatasetError

TRIPLETS_FILE = "triplets.jsonl"
CONTROL_KEY = re.compile(r"^control_path(?:_(\d+))?$")
_WHAT = {"image_path": "image_path (the corrected target)", "caption": "caption (the edit prompt)"}


def control_keys(line: dict[str, Any]) -> list[str]:
    """``control_path`` first, then ``control_path_0``, ``_1``... in numeric order (musubi's order)."""
    found = [(-1 if m.group(1) is None else int(m.group(1)), key)
             for key in line if (m := CONTROL_KEY.match(key))]
    return [key for _, key in sorted(found)]


class TripletLine(BaseModel):
    """One line; unknown fields (lineage ids, our issue and improvement) are kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    image_path: str
    caption: str

    @field_validator("image_path", "caption")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty")
        return value

    @property
    def controls(self) -> list[str]:
        extra = self.model_extra or {}
        return [extra[key] for key in control_keys(extra) if extra[key]]

    @property
    def extra(self) -> dict[str, Any]:
        """Everything but the target, the caption and the controls."""
        return {k: v for k, v in (self.model_extra or {}).items() if not CONTROL_KEY.match(k)}

    def paths(self, base: Path) -> list[Path]:
        """The target, then the controls, resolved against the file's folder."""
        return [resolve(base, value) for value in (self.image_path, *self.controls)]


def resolve(base: Path, value: str) -> Path:
    return Path(value) if Path(value).is_absolute() else base / value


def line_problems(raw: Any) -> list[str]:
    """What makes a parsed line unusable, in words a person can fix (empty when it is fine)."""
    if not isinstance(raw, dict):
        return ["is not a JSON object"]
    problems = []
    try:
        TripletLine.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "line"
            what = _WHAT.get(field, field)
            problems.append({"missing": f"has no {what}", "value_error": f"has an empty {what}"}.get(
                error["type"], f"has a {what} that is not text"))
    controls = [raw[key] for key in control_keys(raw)]
    if not controls or not all(isinstance(c, str) and c for c in controls):
        problems.append("has no control_path (the source image)")
    return problems


def read_lines(path: str | Path) -> tuple[Path, list[tuple[int, Any]]]:
    """The JSONL file (a folder means its triplets.jsonl) and its parsed non-blank lines by number."""
    file = Path(path)
    if file.is_dir():
        file = file / TRIPLETS_FILE
    if not file.is_file():
        raise DatasetError(f"no triplets file at {file}; build one with: flenwheel triplets build PROJECT")
    lines = []
    for number, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            lines.append((number, json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{file} line {number} is not JSON ({exc.msg})") from None
    return file, lines
