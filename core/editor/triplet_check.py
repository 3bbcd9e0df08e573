"""Reading and validating a ``triplets.jsonl``: the contract between TripletWriter and the trainers.

One JSON object per line, paths relative to the file's folder (absolute paths are allowed for
hand-written files):

- ``image_path``: the corrected target; ``control_path``: the source; ``control_path_1``: an
  optional second control (musubi-tuner also accepts ``control_path_0``, ``_1``...);
- ``caption``: the edit prompt; ``issue``: what was wrong (a preset reason key such as
  ``identity_drift``, or the reviewer's own words); ``improvement``: what the target fixes;
- lineage: ``source_id``, ``failed_edit_id``, ``target_id``, ``enriched_dataset`` and more.

Validation checks what a trainer would trip over hours later: every file exists and decodes, the
target is not the source (nor the failed edit), the prompt is not empty, the issue is a preset
or free text, and no target appears twice.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.errors import DatasetError, ImageLoadError
from ..data.images import load_image, pixel_hash
from ..review.stages import MAX_TEXT, REASONS

TRIPLETS_FILE = "triplets.jsonl"
CONTROL_KEY = re.compile(r"^control_path(?:_(\d+))?$")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def control_keys(line: dict[str, Any]) -> list[str]:
    """``control_path`` first, then ``control_path_0``, ``_1``... in numeric order (musubi's order)."""
    found = [(-1 if m.group(1) is None else int(m.group(1)), key)
             for key in line if (m := CONTROL_KEY.match(key))]
    return [key for _, key in sorted(found)]


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


def issue_problem(issue: Any) -> str | None:
    """Why an issue value is unusable, or None (a preset key or the reviewer's own words)."""
    if not isinstance(issue, str) or not issue.strip():
        return f"has no issue (use one of {', '.join(REASONS)} or describe it in words)"
    if len(issue) > MAX_TEXT:
        return f"has an issue of {len(issue)} characters; keep it under {MAX_TEXT}"
    if _CONTROL_CHARS.search(issue):
        return "has control characters in its issue"
    return None


@dataclass
class TripletCheck:
    """What validation found in one triplets file."""

    file: Path
    count: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    issues: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.errors and self.count > 0

    def raise_for_errors(self) -> None:
        if self.errors:
            shown = "; ".join(self.errors[:10])
            more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
            raise DatasetError(f"{self.file}: {len(self.errors)} problem(s): {shown}{more}")
        if not self.count:
            raise DatasetError(f"{self.file} holds no triplets")

    def lines(self) -> list[str]:
        known = sum(n for issue, n in self.issues.items() if issue in REASONS)
        head = (f"{self.file}: {self.count} triplets, {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s); issues: {known} preset, {self.count - known} free text")
        return [head] + [f"  error: {e}" for e in self.errors] + [f"  warning: {w}" for w in self.warnings]


def _image_hash(base: Path, value: Any, what: str, where: str, check: TripletCheck) -> str | None:
    if not isinstance(value, str) or not value:
        check.errors.append(f"{where} has no {what}")
        return None
    path = Path(value) if Path(value).is_absolute() else base / value
    try:
        return pixel_hash(load_image(path))
    except ImageLoadError as exc:
        check.errors.append(f"{where}: {what} {value} {'is missing' if not path.exists() else exc.problem}")
        return None


def validate_triplets(path: str | Path) -> TripletCheck:
    """Check every line of a triplets file; errors name the line and what to fix."""
    file, lines = read_lines(path)
    check = TripletCheck(file)
    targets: dict[str, int] = {}
    for number, line in lines:
        where = f"line {number}"
        if not isinstance(line, dict):
            check.errors.append(f"{where} is not a JSON object")
            continue
        check.count += 1
        target = _image_hash(file.parent, line.get("image_path"), "image_path (the corrected target)", where,
                             check)
        keys = control_keys(line)
        if not keys:
            check.errors.append(f"{where} has no control_path (the source image)")
        controls = [_image_hash(file.parent, line[key], key, where, check) for key in keys]
        if target is not None and controls and target == controls[0]:
            check.errors.append(f"{where}: the target is the same image as the source ({line[keys[0]]}); "
                                "a triplet must show the edit")
        if "failed_edit_path" in line and target is not None:
            failed = _image_hash(file.parent, line["failed_edit_path"], "failed_edit_path", where, check)
            if failed == target:
                check.errors.append(f"{where}: the target is the failed edit itself; it corrects nothing")
        caption = line.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            check.errors.append(f"{where} has an empty caption (the edit prompt)")
        problem = issue_problem(line.get("issue"))
        if problem:
            check.errors.append(f"{where} {problem}")
        else:
            check.issues[line["issue"]] += 1
        if target is not None:
            if target in targets:
                check.warnings.append(f"{where} repeats the target of line {targets[target]}")
            targets.setdefault(target, number)
    return check
