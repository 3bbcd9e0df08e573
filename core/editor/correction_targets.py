"""Where an edit reviewed as needs_correction gets its corrected target (seed step 2.1).

Two sources, checked in this order:

- **A manual fix**: an image in ``data/enriched/vN/corrections/fixed/`` named like the failed edit
  (its file name, with any image extension) or by its id (the full id or a prefix of 8+ characters).
  The review page's file picker and ``flenwheel triplets fix`` store one there for you.
- **An accepted re-run**: the edit made again with an improved prompt (``correction_rerun``) and
  accepted in the ``rerun`` review.

A fix must have the failed edit's aspect ratio (it is the picture the edit should have produced);
a fix of the same aspect at another size is scaled to the edit's size when triplets are written,
and the report says so. A fix is never the failed edit itself nor its source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

from ..data.atomic import atomic_copy
from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError, ImageLoadError
from ..data.images import list_image_files, load_image, load_image_bytes, pixel_hash, png_bytes
from ..data.project import Project
from ..data.records import ImageRecord, utc_now
from ..review.items import find_source
from ..review.placement import ORIGIN_FIELD
from ..review.store import Decision, ReviewStore

FIXED_FOLDER = "corrections/fixed"
REPLACED_FOLDER = f"{FIXED_FOLDER}/.replaced"
NEEDS_CORRECTION = "needs_correction"
ASPECT_TOLERANCE = 0.01
MIN_ID_PREFIX = 8
_HEX = re.compile(r"^[0-9a-f]+$")


class CorrectionError(FlenwheelError):
    """A corrected target cannot be used or stored as asked; the message says what to change."""


@dataclass
class CorrectionItem:
    """One edit reviewed as needs_correction, and what could become its corrected target."""

    dataset: DatasetVersion
    record: ImageRecord
    decision: Decision
    fixes: list[Path] = field(default_factory=list)
    accepted: list[ImageRecord] = field(default_factory=list)
    reruns: int = 0
    pending_reruns: int = 0

    @property
    def name(self) -> str:
        """The failed edit's file stem as it was before review placement (what fixes are named after)."""
        return PurePosixPath(origin(self.record)).stem

    @property
    def target_state(self) -> str:
        if len(self.fixes) > 1:
            return "conflict"
        if self.fixes:
            return "manual fix"
        if self.accepted:
            return "accepted re-run"
        if self.pending_reruns:
            return "re-runs to review"
        return "no target yet"


def origin(record: ImageRecord) -> str:
    return (record.model_extra or {}).get(ORIGIN_FIELD) or record.filename


def _names(record: ImageRecord) -> set[str]:
    return {PurePosixPath(origin(record)).stem, PurePosixPath(record.filename).stem}


def find_record(dataset: DatasetVersion, wanted: str) -> ImageRecord:
    """A record by full id, unique id prefix (8+ characters) or file name, with a clear error otherwise."""
    text = wanted.strip()
    stem = PurePosixPath(text).stem
    records = dataset.records
    exact = [r for r in records if r.id == text or stem in _names(r)]
    if not exact and len(text) >= MIN_ID_PREFIX and _HEX.match(text):
        exact = [r for r in records if r.id.startswith(text)]
    if len(exact) == 1:
        return exact[0]
    if not exact:
        raise CorrectionError(f"no image '{wanted}' in {dataset.label} (give its id, an id prefix of "
                              f"{MIN_ID_PREFIX}+ characters, or its file name)")
    raise CorrectionError(f"'{wanted}' matches {len(exact)} images of {dataset.label}; give more of the id")


def _match_fix(stem: str, records: Sequence[ImageRecord]) -> ImageRecord | None:
    named = [r for r in records if stem in _names(r)]
    if not named and len(stem) >= MIN_ID_PREFIX and _HEX.match(stem):
        named = [r for r in records if r.id.startswith(stem)]
    return named[0] if len(named) == 1 else None


def fixes_by_record(dataset: DatasetVersion, records: Sequence[ImageRecord] | None = None
                    ) -> tuple[dict[str, list[Path]], list[str]]:
    """Files in ``corrections/fixed/`` by the record they fix, and notes on files that fix nothing."""
    folder = dataset.path / FIXED_FOLDER
    if not folder.is_dir():
        return {}, []
    records = list(records) if records is not None else dataset.records
    found: dict[str, list[Path]] = {}
    notes = []
    for path in list_image_files(folder):
        record = _match_fix(path.stem, records)
        if record is None:
            notes.append(f"{FIXED_FOLDER}/{path.name} matches no image of {dataset.label} by name or id; "
                         "name it like the failed edit (e.g. its file name in corrections/)")
        else:
            found.setdefault(record.id, []).append(path)
    return found, notes


def rerun_dataset(project: Project, version: str) -> DatasetVersion | None:
    """``data/reruns/vN``, the re-runs of ``data/enriched/vN``, when any were made."""
    dataset = DatasetVersion(project, "reruns", version)
    return dataset if dataset.exists() else None


def correction_items(project: Project, version: str) -> tuple[list[CorrectionItem], list[str]]:
    """Every needs_correction edit of ``enriched/version`` with its fixes and re-runs, plus notes."""
    dataset = project.dataset("enriched", version)
    store = ReviewStore(project)
    decisions = store.current("enriched", version)
    fixes, notes = fixes_by_record(dataset)
    reruns = rerun_dataset(project, version)
    candidates = reruns.records if reruns is not None else []
    verdicts = store.current("rerun", version) if reruns is not None else {}
    items = []
    for record in dataset.records:
        decision = decisions.get(record.id)
        if decision is None or decision.label != NEEDS_CORRECTION:
            if record.id in fixes:
                label = decision.label if decision else "not reviewed"
                notes.append(f"{', '.join(p.name for p in fixes[record.id])} ignored: {record.filename} is "
                             f"'{label}', not needs_correction")
            continue
        own = [c for c in candidates if (c.model_extra or {}).get("corrects") == record.id]
        accepted = [c for c in own if c.id in verdicts and verdicts[c.id].label == "accept"]
        accepted.sort(key=lambda c: verdicts[c.id].seq, reverse=True)
        items.append(CorrectionItem(dataset, record, decision, fixes.get(record.id, []), accepted, len(own),
                                    sum(1 for c in own if c.id not in verdicts)))
    return items, notes


def fit_to_edit(image: Image.Image, record: ImageRecord, label: str) -> tuple[Image.Image, str | None]:
    """The fix at the failed edit's size; refuses another aspect ratio or a smaller picture, scales down.

    Upscaling a smaller fix would train the editor on blur (a 1x1 upload would become a flat colour).
    """
    width, height = record.width or image.width, record.height or image.height
    if image.size == (width, height):
        return image, None
    have, want = image.width / image.height, width / height
    if abs(have - want) > ASPECT_TOLERANCE * want:
        raise CorrectionError(
            f"{label} is {image.width}x{image.height} (aspect {have:.3f}) but the failed edit "
            f"{PurePosixPath(record.filename).name} is {width}x{height} (aspect {want:.3f}): crop the fix "
            f"to the edit's aspect ratio, or save it at {width}x{height}"
        )
    if image.width < width or image.height < height:
        raise CorrectionError(
            f"{label} is {image.width}x{image.height}, smaller than the failed edit "
            f"{PurePosixPath(record.filename).name} ({width}x{height}): a corrected target must be at least "
            "the edit's size"
        )
    resized = image.resize((width, height), Image.Resampling.LANCZOS)
    return resized, f"{label} scaled from {image.width}x{image.height} to {width}x{height} (the failed edit's size)"


def source_file(project: Project, record: ImageRecord) -> tuple[ImageRecord, Path]:
    """The source an edit was made from (``parents[0]``), still in the project."""
    ref = find_source(project, record)
    if ref is None:
        parent = record.parents[0][:12] if record.parents else "none recorded"
        raise CorrectionError(f"the source of {record.filename} (id {parent}) is no longer in the project")
    dataset = project.dataset("source", ref.version)
    source = dataset.record(ref.image_id)
    return source, dataset.image_path(source)


def check_fix(project: Project, item_record: ImageRecord, image: Image.Image,
              label: str) -> tuple[Image.Image, str | None]:
    """Refuse a fix that is the failed edit or the source, or has the wrong aspect.

    Returns the fix at the edit's size and a note when it had to be scaled.
    """
    fixed_id = pixel_hash(image)
    if fixed_id == item_record.id:
        raise CorrectionError(f"{label} is the failed edit itself; a corrected target must show the fix")
    _, source_path = source_file(project, item_record)
    if fixed_id == pixel_hash(load_image(source_path)):
        raise CorrectionError(f"{label} is the source image; the target must show the edit done right")
    return fit_to_edit(image, item_record, label)


@dataclass
class StoredFix:
    relative: str
    width: int
    height: int
    note: str | None = None
    replaced: list[str] = field(default_factory=list)


def _decode(data: bytes | Path, label: str) -> Image.Image:
    """Decode through the safe loader (full decode, pixel limit, EXIF, any mode), also for bytes from a browser."""
    try:
        return load_image(data) if isinstance(data, Path) else load_image_bytes(data, label)
    except ImageLoadError as exc:
        raise CorrectionError(f"{label} cannot be read: {exc.problem}") from None


def store_fix(project: Project, version: str, image_id: str, data: bytes | Path,
              label: str = "the picked image") -> StoredFix:
    """Save a corrected target for one needs_correction edit as ``corrections/fixed/<name>.png``.

    The file name comes from the record, never from the caller. An earlier fix for the same edit
    is kept under ``corrections/fixed/.replaced/``, never overwritten.
    """
    dataset = project.dataset("enriched", version)
    record = dataset.record(image_id)
    decision = ReviewStore(project).current_for("enriched", version, image_id)
    if decision is None or decision.label != NEEDS_CORRECTION:
        state = decision.label if decision else "not reviewed yet"
        raise CorrectionError(f"{record.filename} is {state}; only edits reviewed as needs_correction "
                              "take a corrected target")
    image = _decode(data, label)
    _, note = check_fix(project, record, image, label)
    name = PurePosixPath(origin(record)).stem
    relative = f"{FIXED_FOLDER}/{name}.png"
    earlier, _ = fixes_by_record(dataset)
    stamp = re.sub(r"[^0-9T]", "", utc_now())
    replaced = []
    with dataset.edit() as edit:
        for old in earlier.get(record.id, []):
            keep = dataset.path / REPLACED_FOLDER / f"{old.stem}_{stamp}{old.suffix}"
            atomic_copy(old, keep)
            old_relative = old.relative_to(dataset.path).as_posix()
            edit.remove_file(old_relative)
            replaced.append(old_relative)
        edit.write_file(relative, png_bytes(image))
    return StoredFix(relative, image.width, image.height, note, replaced)


def fix_path(project: Project, version: str, image_id: str) -> Path | None:
    """The one manual fix of an edit, if there is exactly one."""
    fixes, _ = fixes_by_record(project.dataset("enriched", version))
    found = fixes.get(image_id, [])
    return found[0] if len(found) == 1 else None
