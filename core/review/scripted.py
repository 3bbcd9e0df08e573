"""Review decisions that do not come from the review page: a decisions file, or the demo's auto-review.

Headless runs (``flenwheel run``) review in three ways: wait for a person in the review page, take
the person's decisions from a file they wrote, or, for demos and tests only, let ``auto_review``
decide. Auto-review decisions are stored under the reviewer name ``AUTO_REVIEWER``, so every
summary and report that counts them can say plainly that no human made them.

A decisions file (YAML or JSON) maps review stage -> dataset version (or ``latest``) -> image
(file name, or an id prefix of 8+ characters) -> label, or {label, reason, note}:

    enriched:
      latest:
        obama_office_forest.png: good
        obama_podium_sketch.png: {label: needs_correction, reason: identity_drift}
    synthetic:
      v1:
        3f2a9c1b: pristine
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.errors import FlenwheelError
from ..data.records import ImageRecord
from .gate import GateScope
from .stages import AUTO_REVIEWER, review_stage
from .store import ReviewStore


@dataclass
class ScriptedReport:
    decided: int = 0
    unknown: list[str] = field(default_factory=list)
    not_in_scope: list[str] = field(default_factory=list)


def _labels(stage: str) -> tuple[str, str, str]:
    """The stage's accept, send-back and reject labels (stages without corrections reject instead)."""
    spec = review_stage(stage)
    reject = spec.slot_label("reject")
    correct = spec.slot_label("correct") or reject
    return spec.slot_label("accept").name, correct.name, reject.name


def auto_verdict(stage: str, record: ImageRecord, position: int) -> tuple[str, str | None]:
    """The demo's verdict for one image: identity when it could be measured, else a fixed rotation.

    A face that matches is accepted and a face that does not is sent back as identity drift.
    When no face could be measured (tiny random models draw noise), every fifth image is marked for
    correction and every seventh rejected, so the demo exercises every path.
    """
    accept, correct, reject = _labels(stage)
    identity = (record.scores or {}).get("identity") or {}
    if identity.get("face_count"):
        return (accept, None) if identity.get("match") else (correct, "identity_drift")
    if position % 7 == 6:
        return reject, "artifacts"
    if position % 5 == 4:
        return correct, "auto-review: identity could not be measured (no face found)"
    return accept, None


def auto_review(scope: GateScope) -> ScriptedReport:
    """Decide every pending image of ``scope`` with ``auto_verdict`` (demos and tests only)."""
    store = ReviewStore(scope.project)
    records = {record.id: record for record in scope.dataset.records}
    pending = set(scope.pending())
    report = ScriptedReport()
    for position, image_id in enumerate(scope.ids):
        if image_id not in pending:
            continue
        label, reason = auto_verdict(scope.stage.name, records[image_id], position)
        store.decide(image_id, scope.stage.name, scope.version, label, reason=reason, reviewer=AUTO_REVIEWER)
        report.decided += 1
    return report


def read_decisions(path: str | Path) -> dict[str, Any]:
    """Parse a decisions file, with a message that names the file when it is malformed."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except FileNotFoundError:
        raise FlenwheelError(f"decisions file {file} does not exist") from None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise FlenwheelError(f"decisions file {file} cannot be read: {exc}") from None
    except RecursionError:
        raise FlenwheelError(f"decisions file {file} nests too deeply to be a decisions file") from None
    if not isinstance(data, dict):
        raise FlenwheelError(f"decisions file {file} must map review stages to versions to images")
    return data


def _entries(decisions: dict[str, Any], scope: GateScope) -> dict[str, Any]:
    by_version = decisions.get(scope.stage.name) or {}
    if not isinstance(by_version, dict):
        raise FlenwheelError(f"decisions for the {scope.stage.name} review must map versions to images")
    latest = scope.project.latest_version(scope.dataset.stage)
    entries: dict[str, Any] = {}
    for version, items in by_version.items():
        if version == scope.version or (version == "latest" and latest == scope.version):
            entries.update(items or {})
    return entries


def _match(key: str, records: list[ImageRecord]) -> ImageRecord | None:
    for record in records:
        if key in (record.filename, Path(record.filename).name) or (len(key) >= 8 and record.id.startswith(key)):
            return record
    return None


def apply_decisions(scope: GateScope, decisions: dict[str, Any], reviewer: str = "decisions file") -> ScriptedReport:
    """Record the file's verdicts for the images in ``scope``; unknown names are reported, not guessed."""
    store = ReviewStore(scope.project)
    records = scope.dataset.records
    in_scope = set(scope.ids)
    report = ScriptedReport()
    for key, value in _entries(decisions, scope).items():
        record = _match(str(key), records)
        if record is None:
            report.unknown.append(str(key))
            continue
        if record.id not in in_scope:
            report.not_in_scope.append(str(key))
            continue
        verdict = value if isinstance(value, dict) else {"label": value}
        store.decide(record.id, scope.stage.name, scope.version, verdict.get("label", ""),
                     reason=verdict.get("reason"), note=verdict.get("note"), reviewer=reviewer)
        report.decided += 1
    return report
