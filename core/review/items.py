"""The images a review is about: records read once per metadata change, and their files, safely.

The page asks for a 1000-image list, thumbnails and full images many times a second, and every
decision checks that its image belongs to the dataset. Parsing a large metadata file each time
would make the page slow, so records are cached per metadata file and re-read when the file's
identity (inode, size, mtime) changes, which every atomic rewrite guarantees.

Every file handed to a browser is found through a record of a dataset of the project and must
resolve (symlinks followed) to a regular file inside the project folder: nothing in a request is
ever joined into a path.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..data.dataset import DatasetVersion
from ..data.errors import DatasetError, FlenwheelError
from ..data.project import Project, parse_version
from ..data.records import ImageRecord

IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")


class ForeignImageError(FlenwheelError):
    """An id, dataset or file that is not part of the project's datasets."""


@dataclass(frozen=True)
class RecordIndex:
    """Records of one dataset version in file order, with a lookup by id."""

    dataset: DatasetVersion
    records: tuple[ImageRecord, ...]
    by_id: dict[str, ImageRecord]

    def get(self, image_id: str) -> ImageRecord:
        record = self.by_id.get(image_id)
        if record is None:
            raise ForeignImageError(f"image {image_id[:16]} is not in {self.dataset.label}")
        return record


_cache: dict[Path, tuple[tuple[int, int, int], RecordIndex]] = {}
_cache_lock = threading.Lock()


def record_index(dataset: DatasetVersion) -> RecordIndex:
    """The dataset's records, parsed again only when its metadata file was replaced."""
    path = dataset.metadata_path
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ForeignImageError(f"{dataset.label} does not exist") from None
    key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(path)
    if cached and cached[0] == key:
        return cached[1]
    records = tuple(dataset.records)
    index = RecordIndex(dataset, records, {record.id: record for record in records})
    with _cache_lock:
        _cache[path] = (key, index)
    return index


def check_image_id(image_id: str) -> str:
    if not isinstance(image_id, str) or not IMAGE_ID.match(image_id):
        raise ForeignImageError("image ids are 64 lowercase hex characters (a content hash)")
    return image_id


def open_dataset(project: Project, stage: str, version: str) -> DatasetVersion:
    """A dataset of the project named by request values, each checked before any path is built."""
    try:
        parse_version(version)
        return project.dataset(stage, version)
    except FlenwheelError as exc:
        raise ForeignImageError(str(exc)) from None


def record_file(project: Project, dataset: DatasetVersion, record: ImageRecord) -> Path:
    """The record's file, refused unless it is a regular file inside the project folder."""
    try:
        path = dataset.resolve(record.filename)
    except DatasetError as exc:
        raise ForeignImageError(str(exc)) from None
    if not path.is_relative_to(project.root.resolve()):
        raise ForeignImageError(f"{record.filename} of {dataset.label} leads outside the project")
    if not path.is_file():
        raise ForeignImageError(f"{record.filename} of {dataset.label} is missing on disk")
    return path


@dataclass(frozen=True)
class SourceRef:
    """Where an enriched image's source lives, for the side-by-side view."""

    version: str
    image_id: str


def source_lookup(project: Project) -> dict[str, SourceRef]:
    """Source image ids across every source version (newest version wins on a repeated id)."""
    found: dict[str, SourceRef] = {}
    for version in project.versions("source"):
        try:
            index = record_index(project.dataset("source", version))
        except FlenwheelError:
            continue
        for image_id in index.by_id:
            found[image_id] = SourceRef(version, image_id)
    return found


def find_source(project: Project, record: ImageRecord,
                sources: dict[str, SourceRef] | None = None) -> SourceRef | None:
    """The source an enriched record was made from (``parents[0]``), when it is still in the project."""
    if not record.parents:
        return None
    lookup = sources if sources is not None else source_lookup(project)
    return lookup.get(record.parents[0])
