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

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.errors import DatasetError, ImageLoadError
from ..data.images import load_image, pixel_hash
from ..data.triplet_file import control_keys, line_problems, read_lines
from ..review.stages import MAX_TEXT, REASONS

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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
        check.errors += [f"{where} {problem}" for problem in line_problems(line)]
        target = _image_hash(file.parent, line.get("image_path"), "image_path (the corrected target)", where,
                             check)
        keys = control_keys(line)
        controls = [_image_hash(file.parent, line[key], key, where, check) for key in keys]
        if target is not None and controls and target == controls[0]:
            check.errors.append(f"{where}: the target is the same image as the source ({line[keys[0]]}); "
                                "a triplet must show the edit")
        if "failed_edit_path" in line and target is not None:
            failed = _image_hash(file.parent, line["failed_edit_path"], "failed_edit_path", where, check)
            if failed == target:
                check.errors.append(f"{where}: the target is the failed edit itself; it corrects nothing")
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
