"""TripletWriter (seed step 2.1): every corrected edit becomes a (source, edit prompt, target) triplet.

``build_triplets`` gathers the needs_correction edits of the enriched versions, takes each one's
corrected target (a manual fix, else the latest accepted re-run; see ``correction_targets``), and
writes a self-contained ``data/qwen_training/vN/``:

    control/<name>.png     the source (what the editor gets)        control_1/  a second view, if any
    target/<name>.png      the corrected target, + target/<name>.txt (its caption, ai-toolkit style)
    failed/<name>.png      the failed edit (for the report and the sheet)
    triplets.jsonl         one line per triplet (see ``triplet_check`` for the fields)
    report.json, sheet.png the step-2.1 criteria (``triplet_report``)

Every file is hashed in the version's manifest and the version is finished (sealed), so a trainer
run can always be traced to exactly these images. A rebuild with nothing new says so and writes
nothing; an interrupted build leaves an open version that the next build replaces.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from ..data.criteria import Criterion
from ..data.dataset import DatasetVersion
from ..data.errors import DatasetError, FlenwheelError, ImageLoadError
from ..data.images import load_image, pixel_hash, png_bytes
from ..data.project import Project
from ..data.records import ImageRecord
from ..data.triplet_file import TRIPLETS_FILE, read_lines
from ..identity.gate import resolve_gate
from ..review.stages import reason_title
from .correction_targets import CorrectionError, CorrectionItem, check_fix, correction_items, rerun_dataset, source_file
from .triplet_check import issue_problem, validate_triplets
from .triplet_report import SheetRow, TripletMeasure, TripletReport, build_report, measure, render_sheets

LOG = logging.getLogger("flenwheel.triplets")
STAGE = "qwen_training"
BUILDER = "triplets"
CaptionChoice = Literal["as_chosen", "original", "improved"]
CAPTION_CHOICES = ("as_chosen", "original", "improved")


class NoTripletsError(FlenwheelError):
    """No correction has a usable target yet: a graph can pass this through as zero triplets."""


@dataclass
class PlannedTriplet:
    """One correction with everything needed to write it."""

    item: CorrectionItem
    name: str
    source: ImageRecord
    source_path: Path
    failed: Image.Image
    target: Image.Image
    target_source: str
    target_from: str
    caption: str
    caption_source: str
    improvement: str
    reference: tuple[str, Path] | None = None
    rerun: ImageRecord | None = None

    @property
    def issue(self) -> str:
        return self.item.decision.reason or ""

    def key(self) -> list[Any]:
        return [self.source.id, self.reference[0] if self.reference else None, pixel_hash(self.target),
                self.caption, self.issue, self.improvement]


@dataclass
class TripletBuild:
    """What a build wrote (or found already written) and why corrections were left out."""

    dataset: DatasetVersion | None
    lines: list[dict[str, Any]] = field(default_factory=list)
    report: TripletReport | None = None
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    up_to_date: bool = False

    @property
    def jsonl(self) -> Path | None:
        return self.dataset.path / TRIPLETS_FILE if self.dataset else None

    def summary(self) -> list[str]:
        where = self.dataset.label if self.dataset else "nothing written"
        head = (f"{where}: already holds these {len(self.lines)} triplets (nothing new to write)"
                if self.up_to_date else f"{where}: {len(self.lines)} triplets written")
        out = [head] + (self.report.lines() if self.report else [])
        out += [f"left out: {text}" for text in self.skipped]
        out += [f"waiting for a target: {text}" for text in self.waiting]
        return out + [f"note: {text}" for text in self.notes]


def _improvement(item: CorrectionItem, fix: Path | None, rerun: ImageRecord | None) -> str:
    """What the target fixes: the user's words (a .txt beside the fix, the review note) or a description."""
    if fix is not None and fix.with_suffix(".txt").is_file():
        return fix.with_suffix(".txt").read_text(encoding="utf-8").strip()
    if item.decision.note:
        return item.decision.note
    issue = reason_title(item.decision.reason) or "the problem"
    if rerun is None:
        return f"fixed by hand: {issue}"
    if rerun.prompt and rerun.prompt.strip() != (item.record.prompt or "").strip():
        return f"re-run with an improved prompt (seed {rerun.seed}) fixing {issue}: {rerun.prompt}"
    return f"re-run with a new seed ({rerun.seed}) fixing {issue}"


@dataclass
class Target:
    """The chosen corrected target of one correction, and the caption that goes with it."""

    image: Image.Image
    kind: str
    origin: str
    caption: str
    caption_kind: str
    rerun: ImageRecord | None = None
    notes: list[str] = field(default_factory=list)


def _target(project: Project, item: CorrectionItem, caption: CaptionChoice) -> Target:
    """The manual fix (scaled to the edit's size), else the latest accepted re-run."""
    label = f"{item.dataset.label}/{item.record.filename}"
    original = item.record.prompt or ""
    if item.fixes:
        fix = item.fixes[0]
        shown = f"{item.dataset.label}/{fix.relative_to(item.dataset.path).as_posix()}"
        image = load_image(fix)
        fitted, note = check_fix(project, item.record, image, shown)
        return Target(fitted, "manual", shown, original, "original", notes=[note] if note else [])
    rerun = item.accepted[0]
    reruns = rerun_dataset(project, item.dataset.version)
    image = load_image(reruns.image_path(rerun))
    if pixel_hash(image) == item.record.id:
        raise CorrectionError(f"the accepted re-run {rerun.filename} is identical to the failed edit {label}")
    chosen = (rerun.model_extra or {}).get("train_on", "original") if caption == "as_chosen" else caption
    text = rerun.prompt if chosen == "improved" and rerun.prompt else original
    notes = [f"{len(item.accepted)} re-runs accepted for {label}; the latest accepted, {rerun.filename}, "
             "is the target"] if len(item.accepted) > 1 else []
    return Target(image, "rerun", f"{reruns.label}/{rerun.filename}", text, chosen, rerun, notes)


def _plan_one(project: Project, item: CorrectionItem, caption: CaptionChoice, names: set[str],
              notes: list[str]) -> PlannedTriplet:
    record = item.record
    problem = issue_problem(item.decision.reason)
    if problem:
        raise CorrectionError(f"the review decision {problem}")
    if len(item.fixes) > 1:
        listed = ", ".join(p.name for p in item.fixes)
        raise CorrectionError(f"it has {len(item.fixes)} fixes ({listed}); keep one in corrections/fixed/")
    source, source_path = source_file(project, record)
    target = _target(project, item, caption)
    if not target.caption.strip():
        raise CorrectionError("it has no recorded edit prompt to train on")
    if pixel_hash(target.image) == source.id:
        raise CorrectionError(f"its target {target.origin} is the source image itself")
    reference = None
    if len(record.parents) > 1:
        try:
            ref_record, ref_path = source_file(project, record.model_copy(update={"parents": record.parents[1:]}))
            reference = (ref_record.id, ref_path)
        except CorrectionError as exc:
            target.notes.append(f"{record.filename}: second control left out ({exc})")
    notes.extend(target.notes)
    name = f"{item.dataset.version}_{item.name}"
    if name in names:
        name = f"{name}_{record.id[:8]}"
    names.add(name)
    fix = item.fixes[0] if item.fixes else None
    return PlannedTriplet(item, name, source, source_path, load_image(item.dataset.image_path(record)),
                          target.image, target.kind, target.origin, target.caption, target.caption_kind,
                          _improvement(item, fix, target.rerun), reference, target.rerun)


def plan_triplets(project: Project, enriched_versions: Sequence[str] | None = None,
                  caption: CaptionChoice = "as_chosen") -> tuple[list[PlannedTriplet], TripletBuild]:
    """The triplets a build would write, plus what is left out, waiting, or worth a note."""
    if caption not in CAPTION_CHOICES:
        raise FlenwheelError(f"caption must be one of {', '.join(CAPTION_CHOICES)}, not '{caption}'")
    versions = list(enriched_versions or project.versions("enriched"))
    if not versions:
        raise DatasetError("the project has no enriched datasets yet: enrich and review first")
    outcome = TripletBuild(None)
    planned: list[PlannedTriplet] = []
    names: set[str] = set()
    targets: dict[str, str] = {}
    for version in versions:
        items, notes = correction_items(project, version)
        outcome.notes += notes
        for item in items:
            label = f"{item.dataset.label}/{item.record.filename}"
            if item.target_state in ("no target yet", "re-runs to review"):
                outcome.waiting.append(f"{label} ({item.target_state})")
                continue
            try:
                triplet = _plan_one(project, item, caption, names, outcome.notes)
            except (CorrectionError, ImageLoadError, DatasetError) as exc:
                outcome.skipped.append(f"{label}: {exc}")
                continue
            target_id = pixel_hash(triplet.target)
            if target_id in targets:
                outcome.skipped.append(f"{label}: its target is the same image as the target of {targets[target_id]}")
                continue
            targets[target_id] = label
            planned.append(triplet)
    return planned, outcome


def _line(t: PlannedTriplet, target: ImageRecord, paths: dict[str, str]) -> dict[str, Any]:
    record = t.item.record
    extra = record.model_extra or {}
    line = {"image_path": paths["target"], "control_path": paths["control"]}
    if "control_1" in paths:
        line["control_path_1"] = paths["control_1"]
    line.update(
        caption=t.caption, issue=t.issue, issue_text=reason_title(t.issue), improvement=t.improvement,
        target_source=t.target_source, caption_source=t.caption_source, failed_edit_path=paths["failed"],
        source_id=t.source.id, failed_edit_id=record.id, target_id=target.id,
        reference_id=t.reference[0] if t.reference else None, enriched_dataset=t.item.dataset.label,
        source_dataset=extra.get("source_dataset"), target_from=t.target_from, family=extra.get("family"),
        value=extra.get("value"), failed_seed=record.seed, original_prompt=record.prompt,
        improved_prompt=t.rerun.prompt if t.rerun else None, rerun_seed=t.rerun.seed if t.rerun else None,
    )
    return line


def content_key(planned: list[PlannedTriplet]) -> str:
    rows = sorted(json.dumps(t.key(), default=str) for t in planned)
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()[:16]


def _reset_open_build(dataset: DatasetVersion) -> None:
    """Clear an interrupted build (never a finished version) so it can be written again whole."""
    keep = {dataset.metadata_path.name, "manifest.json", ".lock"}
    with dataset.edit() as edit:
        for root, _, files in os.walk(dataset.path):
            for name in files:
                relative = Path(root, name).relative_to(dataset.path).as_posix()
                if relative not in keep:
                    edit.remove_file(relative)
        edit.records.clear()
        edit.metadata.info.clear()
        edit.metadata.info["builder"] = BUILDER


def _target_version(project: Project, version: str | None, key: str) -> tuple[DatasetVersion, bool]:
    """(version to write, True when it already holds exactly these triplets).

    A finished version is never touched; an open one left by an interrupted build is written again.
    """
    chosen = version or project.latest_version(STAGE)
    fresh = {"builder": BUILDER}
    if chosen is None or not DatasetVersion(project, STAGE, chosen).exists():
        return project.create_dataset(STAGE, version, info=fresh), False
    dataset = project.dataset(STAGE, chosen)
    meta = dataset.load()
    if meta.status == "finished" and meta.info.get("content_key") == key:
        return dataset, True
    if meta.status != "finished" and meta.info.get("builder") == BUILDER:
        _reset_open_build(dataset)
        return dataset, False
    if version is None:
        return project.create_dataset(STAGE, info=fresh), False
    state = "finished (a trainer may already use it)" if meta.status == "finished" else "not a triplet build"
    raise DatasetError(f"{dataset.label} is {state}; leave --version out to build {project.next_version(STAGE)}")


def _write(dataset: DatasetVersion, planned: list[PlannedTriplet], outcome: TripletBuild, key: str,
           pages: list[Image.Image]) -> None:
    with dataset.edit() as edit:
        for t in planned:
            paths = {"control": f"control/{t.name}{t.source_path.suffix}", "failed": f"failed/{t.name}.png",
                     "target": f"target/{t.name}.png"}
            edit.copy_file(t.source_path, paths["control"])
            edit.copy_file(t.item.dataset.image_path(t.item.record), paths["failed"])
            if t.reference:
                paths["control_1"] = f"control_1/{t.name}{t.reference[1].suffix}"
                edit.copy_file(t.reference[1], paths["control_1"])
            target = edit.add_image(
                t.target, filename=paths["target"], parents=[t.source.id, t.item.record.id], caption=t.caption,
                prompt=t.caption, issue=t.issue, improvement=t.improvement, target_source=t.target_source,
                target_from=t.target_from, enriched_dataset=t.item.dataset.label,
            )
            edit.write_file(f"target/{t.name}.txt", (t.caption + "\n").encode("utf-8"))
            outcome.lines.append(_line(t, target, paths))
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in outcome.lines)
        edit.write_file(TRIPLETS_FILE, text.encode("utf-8"))
        edit.write_file("report.json", json.dumps(outcome.report.to_json(), indent=2).encode("utf-8"))
        for number, page in enumerate(pages, start=1):
            edit.write_file("sheet.png" if number == 1 else f"sheet_{number}.png", png_bytes(page))
        edit.metadata.info.update(builder=BUILDER, content_key=key, count=len(planned),
                                  enriched=sorted({t.item.dataset.label for t in planned}),
                                  report=outcome.report.to_json()["checks"])
    dataset.finish()


def _adopt_fixes(planned: list[PlannedTriplet]) -> None:
    """Fixes dropped into ``corrections/fixed/`` by hand join their enriched version's manifest, so
    ``flenwheel verify`` keeps reporting only changes nobody accounted for."""
    folders: dict[str, tuple[DatasetVersion, list[Path]]] = {}
    for t in planned:
        if t.target_source == "manual":
            folders.setdefault(t.item.dataset.label, (t.item.dataset, []))[1].append(t.item.fixes[0])
    for dataset, paths in folders.values():
        with dataset.edit() as edit:
            for path in paths:
                edit.rehash(path.relative_to(dataset.path).as_posix())


def build_triplets(project: Project, enriched_versions: Sequence[str] | None = None, version: str | None = None,
                   identity: str = "auto", caption: CaptionChoice = "as_chosen",
                   log: Callable[[str], None] = LOG.info) -> TripletBuild:
    """Write the triplets of every corrected edit into ``data/qwen_training/vN`` (see the module docstring).

    ``identity`` (auto/on/off) decides whether the report measures face distances;
    ``caption`` overrides the prompt each re-run chose to train on.
    """
    planned, outcome = plan_triplets(project, enriched_versions, caption)
    if not planned:
        why = "; ".join(outcome.skipped + outcome.waiting) or "no edit is reviewed as needs_correction"
        raise NoTripletsError(f"no triplets to write: {why}. Give each correction a target: a fixed image in "
                              "data/enriched/vN/corrections/fixed/, or an accepted re-run (flenwheel triplets rerun)")
    key = content_key(planned)
    dataset, same = _target_version(project, version, key)
    if same:
        outcome.dataset, outcome.up_to_date = dataset, True
        outcome.lines = [line for _, line in read_lines(dataset.path / TRIPLETS_FILE)[1]]
        checks = [Criterion(**check) for check in dataset.load().info.get("report", [])]
        outcome.report = TripletReport(len(outcome.lines), [], None, checks)
        return outcome
    notes: list[str] = []
    scorer = resolve_gate(project, identity, log=notes.append) if identity != "off" else None
    identity_note = notes[0].removeprefix("identity gate off: ") if notes else (
        "identity check turned off" if identity == "off" else None)
    measures = [measure(t.name, t.issue, t.failed, t.target, scorer) for t in planned]
    outcome.report = build_report(measures, identity_note)
    rows = [SheetRow(load_image(t.source_path), t.failed, t.target, _sheet_text(t, m))
            for t, m in zip(planned, measures, strict=True)]
    outcome.dataset = dataset
    _write(dataset, planned, outcome, key, render_sheets(rows, f"{project.config.name}: {dataset.label}"))
    validate_triplets(dataset.path / TRIPLETS_FILE).raise_for_errors()
    _adopt_fixes(planned)
    log(f"{dataset.label}: {len(planned)} triplets written")
    return outcome


def _sheet_text(t: PlannedTriplet, m: TripletMeasure) -> str:
    lines = [t.name, f"issue: {reason_title(t.issue)}", f"target: {t.target_source} ({t.target_from})",
             f"caption: {t.caption}", f"pixel diff {100 * m.pixel:.1f}%, hash {m.perceptual}/64"]
    if m.distances:
        lines.append(f"face distance {m.distances[1]:.2f} -> {m.distances[0]:.2f}")
    return "\n".join(lines)
