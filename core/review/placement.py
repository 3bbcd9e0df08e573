"""Placement: make the folders and records follow the review log.

The decisions in ``review.sqlite`` are the truth; folders are derived from them, so placement can
run any number of times (after every few decisions, when a ReviewGate returns, from the CLI) and
always converges on the same state:

- enriched: files move inside ``data/enriched/vN/`` to ``good/``, ``corrections/`` or ``rejected/``,
  and back to where they were when a decision is undone or pending again;
- synthetic: pristine images are copied into ``data/pristine/vN/`` (a dataset of its own whose
  records keep their lineage, ``parents=[synthetic id]``) and removed from it when the verdict
  changes; the synthetic originals never move;
- benchmark: only the records' labels change.

Every record gets its ``label``, ``reason``, ``review_note``, ``reviewer`` and ``reviewed_at``.

A move copies first and deletes second, inside one dataset transaction. A crash after the copy
leaves both files (the next run sees the identical copy and only deletes the original); a crash
after the delete leaves the metadata naming a missing original next to a whole copy (the next
run checks the copy holds the record's pixels and adopts it). Either way the originals stay until
their copy is whole, and one run later the folders, metadata and manifest agree again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..data.dataset import DatasetVersion, Edit
from ..data.errors import DatasetError, FlenwheelError, ImageLoadError
from ..data.images import load_image, pixel_hash
from ..data.project import Project
from ..data.records import ImageRecord
from .items import RecordIndex, record_file, record_index
from .stages import REVIEW_STAGES, ReviewStage, review_stage
from .store import Decision, ReviewStore

ORIGIN_FIELD = "review_origin"


@dataclass
class PlacementReport:
    """What one placement run changed, repaired or could not do."""

    dataset: str
    moved: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    relabelled: int = 0
    repaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.added or self.removed or self.relabelled or self.repaired)

    def describe(self) -> str:
        parts = [f"{len(self.moved)} moved", f"{len(self.added)} added", f"{len(self.removed)} removed",
                 f"{self.relabelled} relabelled", f"{len(self.repaired)} repaired"]
        text = f"{self.dataset}: {', '.join(parts)}"
        return text + "".join(f"\n  problem: {problem}" for problem in self.problems)


def place(project: Project, stage: str, version: str) -> PlacementReport:
    """Bring a reviewed dataset version in line with its decisions; safe to repeat at any time."""
    spec = review_stage(stage)
    dataset = project.dataset(spec.dataset_stage, version)
    decisions = ReviewStore(project).current(stage, version)
    report = PlacementReport(dataset=dataset.label)
    if spec.placement == "pristine":
        _place_pristine(project, dataset, decisions, report)
    if _needs_work(spec, dataset, decisions):
        with dataset.edit() as edit:
            _report_removed_temps(edit, report)
            if spec.placement == "folders":
                for record in edit.records:
                    try:
                        _move_to_folder(spec, edit, record, decisions.get(record.id), report)
                    except FlenwheelError as exc:  # one bad record must not hold back the rest
                        report.problems.append(f"{record.filename} was not placed: {exc}")
            report.relabelled += sum(_apply_verdict(r, decisions.get(r.id)) for r in edit.records)
    return report


def finish_pending(projects: Sequence[Project], log: Callable[[str], None]) -> None:
    """Place what a killed server left undone (decisions in the store, files not moved yet), at its start."""
    for project in projects:
        for spec in REVIEW_STAGES.values():
            for version in project.versions(spec.dataset_stage):
                try:
                    report = place(project, spec.name, version)
                except FlenwheelError as exc:
                    log(f"FLENwheel review: placement of {spec.name} {version} failed: {exc}")
                    continue
                if report.changed or report.problems:
                    log(f"FLENwheel review: finished pending placement: {report.describe()}")


def target_name(spec: ReviewStage, record: ImageRecord, decision: Decision | None) -> str:
    """Where a record's file belongs: its label's folder, or where it was before review."""
    origin = _origin(record)
    folder = spec.label(decision.label).folder if decision and decision.label in spec.label_names else None
    return f"{folder}/{PurePosixPath(origin).name}" if folder else origin


# Records ------------------------------------------------------------------------------------
def _origin(record: ImageRecord) -> str:
    return (record.model_extra or {}).get(ORIGIN_FIELD) or record.filename


def _verdict_fields(decision: Decision | None) -> dict[str, str | None]:
    if decision is None:
        return {"label": None, "reason": None, "review_note": None, "reviewer": None, "reviewed_at": None}
    return {"label": decision.label, "reason": decision.reason, "review_note": decision.note,
            "reviewer": decision.reviewer, "reviewed_at": decision.at}


def _apply_verdict(record: ImageRecord, decision: Decision | None) -> bool:
    """Copy the verdict onto the record; True when anything changed."""
    wanted = _verdict_fields(decision)
    if all(getattr(record, key, None) == value for key, value in wanted.items()):
        return False
    for key, value in wanted.items():
        setattr(record, key, value)
    return True


def _needs_work(spec: ReviewStage, dataset: DatasetVersion, decisions: dict[str, Decision]) -> bool:
    """A cheap look (no lock, cached records) so an unchanged dataset is not rewritten."""
    for record in record_index(dataset).records:
        decision = decisions.get(record.id)
        if any(getattr(record, key, None) != value for key, value in _verdict_fields(decision).items()):
            return True
        if spec.placement == "folders" and (record.filename != target_name(spec, record, decision)
                                            or not (dataset.path / record.filename).is_file()):
            return True
    return bool(dataset.leftover_temps())


# Folders (enriched) -------------------------------------------------------------------------
def _move_to_folder(spec: ReviewStage, edit: Edit, record: ImageRecord, decision: Decision | None,
                    report: PlacementReport) -> None:
    dataset = edit.dataset
    want = target_name(spec, record, decision)
    if want == record.filename:
        return
    origin = _origin(record)
    want = _free_name(edit, record.id, want)
    source, target = dataset.resolve(record.filename), dataset.resolve(want)
    step = f"{record.filename} -> {want}"
    if source.is_file():
        if target.is_file():
            report.repaired.append(f"{step} (finished a move that was cut short after the copy)")
        edit.move_file(record.filename, want)
    elif target.is_file() and _holds(target, record.id):
        edit.rehash(want)
        edit.rehash(record.filename)
        report.repaired.append(f"{step} (adopted the copy of a move cut short after the delete)")
    else:
        report.problems.append(f"{record.filename} is missing on disk; it cannot be placed ({step})")
        return
    setattr(record, ORIGIN_FIELD, origin)
    record.filename = want
    report.moved.append(step)


def _free_name(edit: Edit, image_id: str, want: str) -> str:
    """``want``, or ``stem_<id>.ext`` when another record or an unrelated file already holds it."""
    others = {other.filename for other in edit.records if other.id != image_id}
    path = edit.dataset.resolve(want)
    if want not in others and (not path.exists() or _holds(path, image_id)):
        return want
    pure = PurePosixPath(want)
    alternative = str(pure.with_name(f"{pure.stem}_{image_id[:8]}{pure.suffix}"))
    if alternative in others:
        raise DatasetError(f"cannot place image {image_id[:12]}: both {want} and {alternative} are taken")
    return alternative


def _holds(path: Path, image_id: str) -> bool:
    """True when the file decodes to exactly the record's pixels (the id is the pixel hash)."""
    try:
        return pixel_hash(load_image(path)) == image_id
    except ImageLoadError:
        return False


def _report_removed_temps(edit: Edit, report: PlacementReport) -> None:
    """Name the temporary files a killed copy left, which opening the edit removed (``DatasetVersion.edit``)."""
    report.repaired.extend(f"{relative} (a temporary file a killed copy left)" for relative in edit.removed_temps)


# Pristine (synthetic) -----------------------------------------------------------------------
def pristine_dataset(project: Project, synthetic: DatasetVersion, create: bool) -> DatasetVersion | None:
    """``data/pristine/vN`` for ``data/synthetic/vN``; refuses one that was made from something else."""
    dataset = DatasetVersion(project, "pristine", synthetic.version)
    if not dataset.exists():
        if not create:
            return None
        return project.create_dataset("pristine", synthetic.version, info={"source": synthetic.label})
    source = dataset.load().info.get("source")
    if source not in (None, synthetic.label):
        raise DatasetError(f"{dataset.label} was made from {source}, not {synthetic.label}; move it aside to "
                           f"place the pristine picks of {synthetic.label}")
    return dataset


def _place_pristine(project: Project, synthetic: DatasetVersion, decisions: dict[str, Decision],
                    report: PlacementReport) -> None:
    chosen = {image_id: decision for image_id, decision in decisions.items() if decision.label == "pristine"}
    target = pristine_dataset(project, synthetic, create=bool(chosen))
    if target is None:
        return
    sources = record_index(synthetic)
    current = record_index(target)
    in_place = {record.id for record in current.records if (target.path / record.filename).is_file()}
    stale = any(record.id not in chosen for record in current.records)
    relabel = any(_verdict_fields(chosen[r.id]) != _verdict_fields_of(r)
                  for r in current.records if r.id in chosen)
    if not (set(chosen) - in_place or stale or relabel or target.leftover_temps()):
        return
    with target.edit() as edit:
        _report_removed_temps(edit, report)
        if edit.metadata.status == "finished":
            raise DatasetError(f"{target.label} is finished (sealed for training); its pristine set can no "
                               "longer change. Start a new synthetic version for new picks")
        for record in [r for r in edit.records if r.id not in chosen]:
            try:
                edit.remove_file(record.filename)
            except FlenwheelError as exc:  # one bad record must not hold back the rest
                report.problems.append(f"{record.filename} was not removed: {exc}")
                continue
            edit.records.remove(record)
            report.removed.append(record.filename)
        have = {record.id: record for record in edit.records}
        for image_id in chosen:
            record = have.get(image_id)
            if record is None:
                _add_pristine(project, edit, sources, image_id, report)
            elif not (target.path / record.filename).is_file():
                edit.copy_file(record_file(project, synthetic, sources.get(image_id)), record.filename)
                report.repaired.append(f"{record.filename} (copied again: the file was missing)")
        for record in edit.records:
            _apply_verdict(record, chosen.get(record.id))


def _verdict_fields_of(record: ImageRecord) -> dict[str, str | None]:
    return {key: getattr(record, key, None) for key in _verdict_fields(None)}


def _add_pristine(project: Project, edit: Edit, sources: RecordIndex, image_id: str,
                  report: PlacementReport) -> None:
    try:
        original = sources.get(image_id)
        path = record_file(project, sources.dataset, original)
    except FlenwheelError as exc:
        report.problems.append(f"pristine pick {image_id[:12]} cannot be copied: {exc}")
        return
    data = original.model_dump(exclude={"id", "filename", "stage", "parents", "created"})
    record = ImageRecord.model_validate(data | {
        "id": image_id, "stage": "pristine", "parents": [image_id], "source_dataset": sources.dataset.label,
        "filename": _free_name(edit, image_id, PurePosixPath(original.filename).name),
    })
    existed = (edit.dataset.path / record.filename).is_file()
    edit.copy_file(path, record.filename)
    edit.records.append(record)
    report.added.append(record.filename)
    if existed:
        report.repaired.append(f"{record.filename} (adopted the copy of a placement cut short)")
