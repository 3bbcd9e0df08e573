"""Versioned datasets: ``data/<stage>/vN/`` folders with records, a metadata file and a manifest.

A version folder is the hand-off between stages. Its metadata file lists one record per image
(``records.ImageRecord``); its ``manifest.json`` lists the sha256 of every file in the folder, so
``flenwheel verify`` can tell when anything was changed, lost or added outside FLENwheel.

All changes go through ``DatasetVersion.edit()``: it takes a cross-process file lock, and on
success commits the metadata and the manifest as one step: the next manifest (naming the new
metadata's hash) is written aside as ``.manifest.next.json``, then the metadata, then the manifest
is renamed into place. A kill between those writes leaves whole files and the pending manifest;
the next edit or ``verify`` finishes that commit (the metadata was written) or drops it (it was not).
A finished version refuses new images; review placement (moving files between ``good/``,
``corrections/`` ...) and record updates (labels, scores) may still touch it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock
from PIL import Image
from pydantic import ValidationError

from . import thumbnails
from .atomic import atomic_copy, atomic_write_bytes, atomic_write_json, sha256_file, stale_temps
from .errors import DatasetError
from .images import pixel_hash, png_bytes, read_png_record, to_rgb8
from .records import METADATA_FILES, SCHEMA_VERSION, ImageRecord, Metadata, utc_now

if TYPE_CHECKING:
    from .project import Project

MANIFEST_FILE = "manifest.json"
PENDING_MANIFEST_FILE = ".manifest.next.json"
LOCK_FILE = ".lock"
_SAFE_STEM = re.compile(r"[^A-Za-z0-9_\-]+")


class DuplicateImageError(DatasetError):
    """The same pixels are already in this version."""

    def __init__(self, new: str, existing: ImageRecord, version: str) -> None:
        self.existing = existing
        super().__init__(
            f"{new} is a duplicate: the same image is already in {version} as {existing.filename} "
            f"(id {existing.id[:12]})"
        )


@dataclass
class VerifyReport:
    """Differences between a version folder and its manifest."""

    dataset: str
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)
    no_manifest: bool = False

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.temps or self.no_manifest)


class Edit:
    """One locked change to a version; files written here are hashed into the manifest on commit."""

    def __init__(self, dataset: DatasetVersion, metadata: Metadata, manifest: dict[str, str]) -> None:
        self.dataset = dataset
        self.metadata = metadata
        self._manifest = manifest
        self.removed_temps: list[str] = []

    @property
    def records(self) -> list[ImageRecord]:
        return self.metadata.images

    def unique_filename(self, stem: str, image_id: str, folder: str = "") -> str:
        """A readable, collision-free file name: the original stem, plus the id prefix when taken."""
        safe = _SAFE_STEM.sub("_", stem).strip("_") or "image"
        prefix = f"{folder.strip('/')}/" if folder else ""
        taken = {record.filename for record in self.metadata.images}
        for candidate in (f"{prefix}{safe}.png", f"{prefix}{safe}_{image_id[:8]}.png"):
            path = self.dataset.path / candidate
            if candidate not in taken and (not path.exists() or _is_leftover_of(path, image_id)):
                return candidate
        raise DatasetError(f"cannot find a free file name for {stem} in {self.dataset.label}")

    def add_image(self, image: Image.Image, record: ImageRecord | None = None, stem: str = "image",
                  png_text: dict[str, Any] | None = None, **fields: Any) -> ImageRecord:
        """Save ``image`` as a PNG and append its record; refuses duplicates and finished versions.

        ``record`` fields (or keyword fields) describe the image; ``id``, ``filename``, ``stage``,
        ``width`` and ``height`` are filled in here so they are always right. ``png_text`` adds
        text chunks to the file (a native graph's ``prompt`` and ``workflow``).
        """
        if self.metadata.status == "finished":
            raise self.dataset.finished_error()
        image_id = pixel_hash(image)
        existing = self.metadata.by_id(image_id)
        if existing is not None:
            raise DuplicateImageError(stem, existing, self.dataset.label)
        data = record.model_dump() if record is not None else {}
        data.update(fields)
        data.update(id=image_id, stage=self.dataset.stage, width=image.width, height=image.height)
        data["filename"] = data.get("filename") or self.unique_filename(stem, image_id)
        try:
            final = ImageRecord.model_validate(data)
        except ValidationError as exc:
            raise DatasetError(f"invalid record for {stem}: {exc}") from None
        target = self.dataset.path / final.filename
        if target.exists() and not _is_leftover_of(target, image_id):
            raise DatasetError(f"{target} already exists and is not in the metadata; refusing to overwrite it")
        self.write_file(final.filename, png_bytes(image, final.to_json(), text=png_text))
        with contextlib.suppress(thumbnails.CacheOutsideProjectError):  # a convenience; the page renders it later
            thumbnails.store(self.dataset.project.cache_dir, image_id, to_rgb8(image))
        self.metadata.images.append(final)
        return final

    def write_file(self, relative: str, data: bytes) -> Path:
        """Write any file (a sheet, a caption .txt) into the version; it joins the manifest."""
        from .atomic import atomic_write_bytes

        path = self.dataset.resolve(relative)
        atomic_write_bytes(path, data)
        self._manifest[relative] = sha256_file(path)
        return path

    def copy_file(self, source: str | Path, relative: str) -> Path:
        path = self.dataset.resolve(relative)
        atomic_copy(source, path)
        self._manifest[relative] = sha256_file(path)
        return path

    def move_file(self, old: str, new: str) -> None:
        """Move a file inside the version (review placement); copy-then-delete keeps a crash repairable."""
        source = self._regular(old)
        target = self.dataset.resolve(new)
        if old == new:
            return
        if target.exists() and sha256_file(target) != sha256_file(source):
            raise DatasetError(f"cannot move {old} to {new}: a different file is already there")
        if not target.exists():
            atomic_copy(source, target)
        self._manifest[new] = sha256_file(target)
        source.unlink()
        self._manifest.pop(old, None)

    def remove_file(self, relative: str) -> None:
        path = self._regular(relative)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._manifest.pop(relative, None)

    def _regular(self, relative: str) -> Path:
        """A file placement may delete: never a symbolic link, whose target may be another record's file."""
        path = self.dataset.resolve(relative)
        if (self.dataset.path / relative).is_symlink():
            raise DatasetError(f"{relative} in {self.dataset.label} is a symbolic link; FLENwheel moves and deletes "
                               "only regular files. Replace the link by a copy of the image")
        return path

    def rehash(self, relative: str) -> None:
        """Refresh one file's manifest entry after it was written by other means."""
        path = self.dataset.resolve(relative)
        if path.exists():
            self._manifest[relative] = sha256_file(path)
        else:
            self._manifest.pop(relative, None)


def _is_leftover_of(path: Path, image_id: str) -> bool:
    """True when ``path`` is this very image, written by an add that crashed before its commit."""
    try:
        record = read_png_record(path)
    except (OSError, ValueError):
        return False
    return bool(record) and record.get("id") == image_id


class DatasetVersion:
    """One version folder of one stage, e.g. ``data/source/v1``."""

    def __init__(self, project: Project, stage: str, version: str) -> None:
        self.project = project
        self.stage = stage
        self.version = version
        self.path = project.dataset_dir(stage, version)

    # Identity -----------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.stage}/{self.version}"

    @property
    def metadata_path(self) -> Path:
        return self.path / METADATA_FILES[self.stage]

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    def exists(self) -> bool:
        return self.metadata_path.is_file()

    def __repr__(self) -> str:
        return f"DatasetVersion({self.project.root}, {self.label})"

    # Creation ---------------------------------------------------------------------------
    @classmethod
    def create(cls, project: Project, stage: str, version: str, info: dict[str, Any]) -> DatasetVersion:
        dataset = cls(project, stage, version)
        if dataset.path.exists() and any(dataset.path.iterdir()):
            raise DatasetError(f"{dataset.path} already exists; pick a new version ({project.next_version(stage)})")
        dataset.path.mkdir(parents=True, exist_ok=True)
        with dataset._lock():
            metadata = Metadata(stage=stage, dataset_version=version, info=dict(info))
            dataset._commit(metadata, {})
        return dataset

    # Reading ----------------------------------------------------------------------------
    def load(self) -> Metadata:
        """Parse the metadata file, with a message naming the file when it is malformed."""
        try:
            raw = json.loads(self.metadata_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetError(f"{self.label} has no {self.metadata_path.name}; is {self.path} a dataset?") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{self.metadata_path} is not valid JSON ({exc})") from None
        schema = raw.get("schema_version", SCHEMA_VERSION) if isinstance(raw, dict) else None
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise DatasetError(
                f"{self.metadata_path} has schema_version {schema}, newer than this FLENwheel understands; upgrade it"
            )
        try:
            images = [ImageRecord.model_validate(item) for item in raw.get("images", [])]
        except ValidationError as exc:
            raise DatasetError(f"{self.metadata_path} has a malformed record: {exc}") from None
        return Metadata(
            stage=raw.get("stage", self.stage),
            dataset_version=raw.get("dataset_version", self.version),
            status=raw.get("status", "open"),
            created=raw.get("created") or utc_now(),
            finished=raw.get("finished"),
            info=raw.get("info") or {},
            images=images,
        )

    @property
    def records(self) -> list[ImageRecord]:
        return self.load().images

    @property
    def finished(self) -> bool:
        return self.load().status == "finished"

    def record(self, image_id: str) -> ImageRecord:
        found = self.load().by_id(image_id)
        if found is None:
            raise DatasetError(f"no image with id {image_id} in {self.label}")
        return found

    def image_path(self, record: ImageRecord) -> Path:
        return self.resolve(record.filename)

    def resolve(self, relative: str) -> Path:
        """Resolve a path inside the version folder, refusing anything that would leave it."""
        candidate = Path(relative)
        if candidate.is_absolute() or ".." in candidate.parts or not relative:
            raise DatasetError(f"'{relative}' is not a path inside {self.label}")
        resolved = (self.path / candidate).resolve()
        if not resolved.is_relative_to(self.path.resolve()):
            raise DatasetError(f"'{relative}' leads outside {self.label}")
        return resolved

    def finished_error(self) -> DatasetError:
        return DatasetError(
            f"{self.label} is finished and takes no new images; start {self.project.next_version(self.stage)} instead"
        )

    # Writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def edit(self) -> Iterator[Edit]:
        """Lock, load, let the caller change records and files, then commit metadata + manifest."""
        with self._lock():
            self._recover_commit()
            metadata = self.load()
            manifest = self._read_manifest()
            change = Edit(self, metadata, manifest)
            change.removed_temps = self._remove_leftover_temps()
            yield change
            self._commit(metadata, manifest)

    def add_image(self, image: Image.Image, stem: str = "image", **fields: Any) -> ImageRecord:
        """Add one image in its own transaction (what resumable engines want)."""
        with self.edit() as change:
            return change.add_image(image, stem=stem, **fields)

    def update_info(self, **info: Any) -> None:
        with self.edit() as change:
            change.metadata.info.update(info)

    def finish(self) -> None:
        """Seal the version: no more images, and the manifest is rebuilt from the files on disk."""
        with self._lock():
            self._recover_commit()
            metadata = self.load()
            metadata.status = "finished"
            metadata.finished = metadata.finished or utc_now()
            self._commit(metadata, {name: sha256_file(self.path / name) for name in self._files_on_disk()})

    def verify(self) -> VerifyReport:
        """Compare the files on disk with the manifest."""
        report = VerifyReport(dataset=self.label, temps=self.leftover_temps())
        if self._pending_manifest_path.is_file():
            with self._lock():
                self._recover_commit()
        if not self.manifest_path.is_file():
            report.no_manifest = True
            return report
        expected = self._read_manifest()
        present = set(self._files_on_disk())
        for name, digest in sorted(expected.items()):
            if name not in present:
                report.missing.append(name)
            elif sha256_file(self.path / name) != digest:
                report.changed.append(name)
        report.extra = sorted(present - set(expected))
        return report

    def leftover_temps(self) -> list[str]:
        """Temporary files a killed write left anywhere in the version (relative paths), for ``verify``."""
        folders = [self.path, *(Path(root, d) for root, dirs, _ in os.walk(self.path) for d in dirs)]
        return sorted(path.relative_to(self.path).as_posix() for folder in folders for path in stale_temps(folder))

    def _remove_leftover_temps(self) -> list[str]:
        """Delete what killed writes left; only under the lock, which every writer into a version holds."""
        removed = self.leftover_temps()
        for relative in removed:
            with contextlib.suppress(FileNotFoundError):
                (self.path / relative).unlink()
        return removed

    # Internals --------------------------------------------------------------------------
    def _lock(self) -> FileLock:
        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / LOCK_FILE), timeout=120)

    def _read_manifest(self) -> dict[str, str]:
        if not self.manifest_path.is_file():
            return {}
        try:
            return dict(json.loads(self.manifest_path.read_text(encoding="utf-8")).get("files", {}))
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise DatasetError(f"{self.manifest_path} is malformed ({exc}); run flenwheel verify") from None

    @property
    def _pending_manifest_path(self) -> Path:
        return self.path / PENDING_MANIFEST_FILE

    def _commit(self, metadata: Metadata, manifest: dict[str, str]) -> None:
        """Metadata and manifest as one step (see the module docstring): two atomic writes alone
        left a kill between them with a manifest that missed the images just recorded."""
        data = (json.dumps(metadata.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        manifest[self.metadata_path.name] = hashlib.sha256(data).hexdigest()
        atomic_write_json(
            self._pending_manifest_path,
            {"schema_version": SCHEMA_VERSION, "algorithm": "sha256", "dataset": self.label,
             "files": dict(sorted(manifest.items()))},
        )
        atomic_write_bytes(self.metadata_path, data)
        os.replace(self._pending_manifest_path, self.manifest_path)

    def _recover_commit(self) -> None:
        """Finish or drop a commit a kill interrupted (call under the lock). The metadata file is
        always whole, so a pending manifest that names its hash belongs to it; any other was never
        committed."""
        pending = self._pending_manifest_path
        if not pending.is_file():
            return
        named = json.loads(pending.read_text(encoding="utf-8"))["files"].get(self.metadata_path.name)
        if self.metadata_path.is_file() and named == sha256_file(self.metadata_path):
            os.replace(pending, self.manifest_path)
        else:
            pending.unlink()

    def _files_on_disk(self) -> Iterable[str]:
        """Every file of the version except the manifest, lock and hidden temp/cache files."""
        for root, dirs, files in os.walk(self.path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith(".") or name == MANIFEST_FILE:
                    continue
                yield Path(root, name).relative_to(self.path).as_posix()
