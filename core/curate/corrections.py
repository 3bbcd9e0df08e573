"""Correcting the source set: remove a photo, or fix its angle, expression or caption.

Without this a mislabelled photo could only be added again, which the duplicate check refuses.
An open version is changed in place (records, the PNG's embedded record and the manifest in one
transaction). A finished version is never touched: the change goes into a new version that
holds every other image unchanged, and its info names the version it came from and what changed,
so the training sets built from the old version stay reproducible.

Photos are named by file name or by the start of their id (at least 6 hex digits), as
``flenwheel source check`` and the review page show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data.dataset import DatasetVersion
from ..data.images import load_image, png_bytes
from ..data.project import Project
from ..data.records import ImageRecord, utc_now
from .curation import CurationError, check_vocabulary, make_caption

STAGE = "source"
MIN_ID_PREFIX = 6


@dataclass
class SourceChange:
    """What a remove or retag did: the version written, whether it is new, and the images touched."""

    dataset: str
    new_version: bool
    changed: list[ImageRecord] = field(default_factory=list)
    removed: list[ImageRecord] = field(default_factory=list)

    def lines(self) -> list[str]:
        where = f"a new version {self.dataset} (the previous one is finished)" if self.new_version else self.dataset
        out = [f"removed {r.filename}" for r in self.removed]
        out += [f"retagged {r.filename}: angle {r.angle}, expression {r.expression}, caption '{r.caption}'"
                for r in self.changed]
        return [*out, f"{len(self.removed)} removed, {len(self.changed)} retagged in {where}"]


def _version(project: Project, version: str | None) -> DatasetVersion:
    name = version or project.latest_version(STAGE)
    if not name or name not in project.versions(STAGE):
        raise CurationError(f"no source version {version or ''} to change; add photos with `flenwheel source add`")
    return project.dataset(STAGE, name)


def select(records: Sequence[ImageRecord], refs: Sequence[str], label: str) -> list[ImageRecord]:
    """The records named by ``refs`` (file names or id prefixes); an unknown or ambiguous name fails."""
    chosen: list[ImageRecord] = []
    for ref in refs:
        matches = [r for r in records if ref in (r.filename, r.filename.rsplit(".", 1)[0])]
        if not matches and len(ref) >= MIN_ID_PREFIX:
            matches = [r for r in records if r.id.startswith(ref.lower())]
        if len(matches) != 1:
            problem = "matches no image" if not matches else f"matches {len(matches)} images"
            raise CurationError(f"'{ref}' {problem} in {label}; name a file (see `flenwheel source check`) "
                                f"or at least {MIN_ID_PREFIX} hex digits of an id")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def retagged(project: Project, record: ImageRecord, angle: str | None, expression: str | None,
             caption: str | None) -> ImageRecord:
    """``record`` with new tags; a caption built from the old tags is rebuilt from the new ones."""
    new_angle = angle or record.angle or "unknown"
    new_expression = expression or record.expression or "unknown"
    check_vocabulary(new_angle, new_expression)
    built = make_caption(project, None, record.angle or "unknown", record.expression or "unknown")
    if caption:
        new_caption = make_caption(project, caption, new_angle, new_expression)
    elif record.caption in (None, built):
        new_caption = make_caption(project, None, new_angle, new_expression)
    else:
        new_caption = record.caption
    return record.model_copy(update={"angle": new_angle, "expression": new_expression, "caption": new_caption})


def _apply(project: Project, dataset: DatasetVersion, removed: list[ImageRecord],
           changed: list[ImageRecord], what: str) -> SourceChange:
    if not dataset.finished:
        with dataset.edit() as edit:
            gone = {r.id for r in removed}
            updates = {r.id: r for r in changed}
            for record in removed:
                edit.remove_file(record.filename)
            edit.metadata.images = [updates.get(r.id, r) for r in edit.metadata.images if r.id not in gone]
            for record in changed:
                image = load_image(dataset.image_path(record))
                edit.write_file(record.filename, png_bytes(image, record.to_json()))
        return SourceChange(dataset.label, False, changed, removed)
    return _into_new_version(project, dataset, removed, changed, what)


def _into_new_version(project: Project, old: DatasetVersion, removed: list[ImageRecord],
                      changed: list[ImageRecord], what: str) -> SourceChange:
    metadata = old.load()
    info = {**metadata.info, "derived_from": old.label, "change": what, "changed_at": utc_now()}
    new = project.create_dataset(STAGE, info=info)
    gone = {r.id for r in removed}
    updates = {r.id: r for r in changed}
    with new.edit() as edit:
        for record in metadata.images:
            if record.id in gone:
                continue
            final = updates.get(record.id, record)
            edit.add_image(load_image(old.image_path(record)), record=final, stem=final.filename.rsplit(".", 1)[0])
    return SourceChange(new.label, True, changed, removed)


def remove_sources(project: Project, refs: Sequence[str], version: str | None = None) -> SourceChange:
    """Take photos out of the source set (in place when open, else into a new version)."""
    dataset = _version(project, version)
    removed = select(dataset.records, refs, dataset.label)
    return _apply(project, dataset, removed, [], "removed " + ", ".join(r.filename for r in removed))


def retag_sources(project: Project, refs: Sequence[str], angle: str | None = None, expression: str | None = None,
                  caption: str | None = None, version: str | None = None) -> SourceChange:
    """Correct the angle, expression or caption of photos (in place when open, else into a new version)."""
    if not (angle or expression or caption):
        raise CurationError("nothing to change: give --angle, --expression or --caption")
    dataset = _version(project, version)
    changed = [retagged(project, r, angle, expression, caption) for r in select(dataset.records, refs, dataset.label)]
    return _apply(project, dataset, [], changed, "retagged " + ", ".join(r.filename for r in changed))
