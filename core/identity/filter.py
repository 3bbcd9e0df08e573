"""Step 1.6: keep the synthetic images that still show the character.

Every image of ``data/synthetic/vN/`` is scored against the project's references; the score goes
into its record (``scores["identity"]``, see ``identity.IdentityScore``), beside what the face
instruments read on the same faces (``scores["instruments"]``: view, expression), and the images that
match are copied into ``data/synthetic/vN/filtered/`` through the dataset's edit transactions,
so the manifest always lists them. The record's ``filtered`` field names that copy (None when the
image was removed).

Re-running is cheap and safe:
- A stored score is reused when it was measured against the same references with the same
  detector and policy; only the tolerance is applied afresh (``rescore`` forces a new measurement).
- An image that no longer passes (a stricter tolerance) loses its ``filtered/`` copy.
- Images that already carry a review label are left exactly as they are.
- Results are committed in small batches, so an interrupt keeps what was scored before it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.errors import DatasetError, ImageLoadError
from ..data.handles import DatasetHandle
from ..data.images import load_image
from ..data.project import Project
from ..data.records import ImageRecord, utc_now
from .coverage import INSTRUMENTS
from .identity import DEFAULT_TOLERANCE, IdentityScore, IdentityScorer
from .pool import check_workers, iter_scores

FILTERED_DIR = "filtered"
COMMIT_EVERY = 16

Progress = Callable[[int, int, "Image.Image | None"], None]


@dataclass
class FilterOutcome:
    """What happened to one record: kept (copied to filtered/), removed, or skipped (already reviewed)."""

    record_id: str
    filename: str
    status: str
    filtered: str | None = None
    score: IdentityScore | None = None
    reused: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "filename": self.filename,
            "status": self.status,
            "filtered": self.filtered,
            "reused_score": self.reused,
            "identity": self.score.to_json() if self.score else None,
        }


@dataclass
class FilterReport:
    dataset: DatasetVersion
    scorer: IdentityScorer
    outcomes: list[FilterOutcome] = field(default_factory=list)

    def _with(self, status: str) -> list[FilterOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def kept(self) -> list[FilterOutcome]:
        return self._with("kept")

    @property
    def removed(self) -> list[FilterOutcome]:
        return self._with("removed")

    @property
    def skipped(self) -> list[FilterOutcome]:
        return self._with("skipped")

    @property
    def filtered_dir(self) -> Path:
        return self.dataset.path / FILTERED_DIR

    def removed_by_verdict(self) -> dict[str, int]:
        """Why images were removed: counts of mismatch, no_face, multiple_faces, unreadable."""
        return dict(collections.Counter(o.score.verdict for o in self.removed if o.score))

    def summary_line(self) -> str:
        why = ", ".join(f"{verdict} {count}" for verdict, count in sorted(self.removed_by_verdict().items()))
        return (f"{self.dataset.label}: kept {len(self.kept)}, removed {len(self.removed)}"
                f"{f' ({why})' if why else ''}, skipped {len(self.skipped)}; kept images are in {self.filtered_dir}")

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.label,
            "filtered_dir": str(self.filtered_dir),
            "tolerance": self.scorer.tolerance,
            "policy": self.scorer.policy,
            "detector": self.scorer.settings.tag,
            "references": self.scorer.references.to_json(),
            "kept": len(self.kept),
            "removed": len(self.removed),
            "skipped": len(self.skipped),
            "removed_by_verdict": self.removed_by_verdict(),
            "images": [o.to_json() for o in self.outcomes],
        }


def _reusable(record: ImageRecord, scorer: IdentityScorer) -> IdentityScore | None:
    stored = record.scores.get("identity")
    if not isinstance(stored, dict) or stored.get("verdict") == "unreadable":
        return None
    if scorer.instruments and not isinstance(record.scores.get(INSTRUMENTS), dict):
        return None  # scored before the filter read views: measure once more, for the loop's coverage
    same = (
        stored.get("references") == scorer.references.fingerprint
        and stored.get("policy") == scorer.policy
        and stored.get("detector") == scorer.settings.tag
    )
    return IdentityScore.from_json(stored).with_tolerance(scorer.tolerance) if same else None


def _commit(dataset: DatasetVersion, pending: list[FilterOutcome]) -> None:
    """Write scores, add passing copies to filtered/ and drop copies that no longer pass, in one edit."""
    with dataset.edit() as edit:
        by_id = {record.id: record for record in edit.records}
        for outcome in pending:
            record = by_id.get(outcome.record_id)
            if record is None or outcome.score is None or record.label:
                continue  # gone, or reviewed while we were scoring: a review decision wins
            target = f"{FILTERED_DIR}/{Path(record.filename).name}"
            record.scores["identity"] = outcome.score.to_json()
            if outcome.score.instruments is not None:
                record.scores[INSTRUMENTS] = outcome.score.instruments
            if outcome.score.match:
                if not dataset.resolve(target).exists():
                    edit.copy_file(dataset.image_path(record), target)
                record.filtered = target
            else:
                if dataset.resolve(target).exists():
                    edit.remove_file(target)
                record.filtered = None
    pending.clear()


def _score_record(
    dataset: DatasetVersion, record: ImageRecord, scorer: IdentityScorer, rescore: bool
) -> tuple[IdentityScore, Image.Image | None, bool]:
    reused = None if rescore else _reusable(record, scorer)
    if reused is not None:
        return reused, None, True
    try:
        image = load_image(dataset.image_path(record))
    except ImageLoadError as exc:
        return scorer.unreadable(exc.problem), None, False
    return scorer.score(image), image, False


def _scores(
    dataset: DatasetVersion, records: list[ImageRecord], scorer: IdentityScorer, rescore: bool, workers: int | None
) -> Iterator[tuple[IdentityScore, Image.Image | None, bool]]:
    """(score, preview, reused) of each unreviewed record, in order; new measurements on ``workers`` cores.

    With several workers the images are decoded in the workers, so there is no preview.
    """
    todo = [record for record in records if not record.label]
    if check_workers(workers) <= 1:
        for record in todo:
            yield _score_record(dataset, record, scorer, rescore)
        return
    stored = {record.id: None if rescore else _reusable(record, scorer) for record in todo}
    fresh = iter_scores(scorer, [dataset.image_path(r) for r in todo if stored[r.id] is None], workers)
    try:
        for record in todo:
            reused = stored[record.id]
            yield (reused, None, True) if reused is not None else (next(fresh), None, False)
    finally:
        fresh.close()


def filter_dataset(
    dataset: DatasetVersion,
    scorer: IdentityScorer,
    ids: list[str] | tuple[str, ...] | None = None,
    rescore: bool = False,
    progress: Progress | None = None,
    workers: int | None = 1,
) -> FilterReport:
    """Score every (or every listed) record of ``dataset`` and sort the passing ones into filtered/.

    ``workers`` processes measure the faces (None or 0: every core); the scores are the same. Each
    record also gets what the instruments read on its faces (``scores["instruments"]``: view,
    expression), so a pristine pick counts as measured in the next turn's coverage.
    """
    scorer = scorer.reading_instruments()
    wanted = None if ids is None else set(ids)
    records = [r for r in dataset.records if wanted is None or r.id in wanted]
    records = [r for r in records if not r.filename.startswith(f"{FILTERED_DIR}/")]
    if not records:
        raise DatasetError(f"{dataset.label} has no images to filter; run the generation step (1.5) first")
    report = FilterReport(dataset, scorer)
    pending: list[FilterOutcome] = []
    scores = _scores(dataset, records, scorer, rescore, workers)
    try:
        for done, record in enumerate(records, start=1):
            if record.label:
                report.outcomes.append(
                    FilterOutcome(record.id, record.filename, "skipped", getattr(record, "filtered", None))
                )
                preview = None
            else:
                score, preview, reused = next(scores)
                target = f"{FILTERED_DIR}/{Path(record.filename).name}" if score.match else None
                outcome = FilterOutcome(
                    record.id, record.filename, "kept" if score.match else "removed", target, score, reused
                )
                report.outcomes.append(outcome)
                pending.append(outcome)
                if len(pending) >= COMMIT_EVERY:
                    _commit(dataset, pending)
            if progress:
                progress(done, len(records), preview)
    finally:
        scores.close()
        if pending:
            _commit(dataset, pending)
    dataset.update_info(
        identity_filter={
            "time": utc_now(),
            "tolerance": scorer.tolerance,
            "policy": scorer.policy,
            "detector": scorer.settings.tag,
            "references": scorer.references.fingerprint,
            "kept": len(report.kept),
            "removed": len(report.removed),
            "skipped": len(report.skipped),
        }
    )
    return report


def run_filter(
    project: Project,
    version: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    policy: str = "largest",
    detect_side: int = 512,
    model: str = "auto",
    source_version: str | None = None,
    rescore: bool = False,
    progress: Progress | None = None,
    workers: int | None = 1,
) -> FilterReport:
    """Step 1.6 on ``data/synthetic/vN`` (latest by default) against the project's source references."""
    dataset = project.dataset("synthetic", version)
    scorer = IdentityScorer.from_project(project, source_version, tolerance, policy, detect_side, model)
    return filter_dataset(dataset, scorer, rescore=rescore, progress=progress, workers=workers)


def score_images(
    images: Sequence[Image.Image], scorer: IdentityScorer, progress: Progress | None = None
) -> list[IdentityScore]:
    """Scores of pictures that belong to no dataset (an IMAGE batch without a project)."""
    scores = []
    for done, image in enumerate(images, start=1):
        scores.append(scorer.score(image))
        if progress:
            progress(done, len(images), image)
    return scores


def import_synthetic(
    project: Project,
    images: Sequence[Image.Image],
    version: str | None = None,
    origin: str = "ComfyUI IMAGE batch",
) -> DatasetHandle:
    """Put pictures made outside FLENwheel's generator into a synthetic version, so they can be filtered.

    The latest open synthetic version is used (a new one when none is open). Running the same
    batch again finds the same pixels and reuses their records, so re-queuing a graph adds nothing.
    """
    if version:
        dataset = (
            project.dataset("synthetic", version)
            if version in project.versions("synthetic")
            else project.create_dataset("synthetic", version)
        )
    else:
        latest = project.latest_version("synthetic")
        dataset = project.dataset("synthetic", latest) if latest else None
        if dataset is None or dataset.finished:
            dataset = project.create_dataset("synthetic")
    ids = []
    with dataset.edit() as edit:
        for index, image in enumerate(images):
            try:
                ids.append(edit.add_image(image, stem=f"batch_{index:04d}", origin=origin).id)
            except DuplicateImageError as exc:
                ids.append(exc.existing.id)
    return DatasetHandle(dataset, tuple(ids))
