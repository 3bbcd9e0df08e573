"""What the trainers train on: (image, caption[, source images]) items from any of the accepted layouts.

``dataset_path`` entries may be:

- a ``training_set.json`` written by ``flenwheel train init`` / ``flenwheel iterate`` (a frozen list
  of project images with lineage and hashes, so a resumed run sees exactly the same data);
- a project dataset version folder (``data/source/v1``, ``data/enriched/v1`` - only records labelled
  ``good`` -, ``data/pristine/v1``), read through its metadata file;
- a ``triplets.jsonl`` or a folder holding one (Qwen-Edit only);
- any folder of images with same-name ``.txt`` captions (ai-toolkit style).

Captions carry the instance token: ``[trigger]`` is replaced by it, and a caption without it gets
it prepended, because a character LoRA must learn to tie the face to the token.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..core.data.atomic import sha256_file
from ..core.data.errors import DatasetError
from ..core.data.images import list_image_files
from ..core.data.records import METADATA_FILES
from ..core.models.registry import EDITOR, families, family
from .triplets import TRIPLETS_FILE, read_triplets

TRAINING_SET_FILE = "training_set.json"
TRIGGER = "[trigger]"
EXCLUDED_LABELS = {"rejected", "needs_correction", "corrections", "correction"}


@dataclass(frozen=True)
class TrainItem:
    """One training example: the image to learn, its caption and (for edits) the source image(s)."""

    image: Path
    caption: str
    id: str
    controls: tuple[Path, ...] = ()
    origin: str = ""
    size: tuple[int, int] = (0, 0)


@dataclass
class TrainingData:
    items: list[TrainItem]
    version: str
    hash: str
    sources: list[str] = field(default_factory=list)


def fill_caption(caption: str, token: str | None) -> str:
    text = caption.strip()
    if not token:
        return text.replace(TRIGGER, "").strip()
    text = text.replace(TRIGGER, token)
    first = token.split()[0]
    return text if first in text else f"{token}, {text}" if text else token


def _size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read training image {path}: {exc}") from None


def _item(path: Path, caption: str, item_id: str, origin: str, controls: tuple[Path, ...] = ()) -> TrainItem:
    return TrainItem(path, caption, item_id, controls, origin, _size(path))


def _from_training_set(file: Path, token: str | None) -> tuple[list[TrainItem], str]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{file} is not a readable training set ({exc})") from None
    items, problems = [], []
    for entry in data.get("items", []):
        path = Path(entry["path"])
        path = path if path.is_absolute() else file.parent / path
        if not path.is_file():
            problems.append(f"missing {path}")
        elif entry.get("sha256") and sha256_file(path) != entry["sha256"]:
            problems.append(f"changed {path}")
        else:
            items.append(
                _item(
                    path,
                    fill_caption(entry.get("caption") or "", token),
                    entry["id"],
                    entry.get("origin", file.name),
                )
            )
    if problems:
        raise DatasetError(
            f"{file}: {len(problems)} image(s) are no longer as frozen ({'; '.join(problems[:5])}); "
            "rebuild the "
            "training set with flenwheel train init (or flenwheel iterate) into a new version"
        )
    return items, str(data.get("version") or file.parent.name)


def _from_dataset_version(folder: Path, metadata: Path, token: str | None) -> list[TrainItem]:
    try:
        raw = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{metadata} is not valid JSON ({exc})") from None
    stage = raw.get("stage") or folder.parent.name
    items = []
    for record in raw.get("images", []):
        label = record.get("label")
        if (stage == "enriched" and label != "good") or label in EXCLUDED_LABELS:
            continue
        path = folder / record["filename"]
        if not path.is_file():
            raise DatasetError(
                f"{metadata} lists {record['filename']}, which is missing; run flenwheel verify"
            )
        caption = record.get("caption") or record.get("prompt") or ""
        items.append(
            _item(
                path,
                fill_caption(caption, token),
                record.get("id") or sha256_file(path),
                f"{stage}/{folder.name}",
            )
        )
    return items


def _from_caption_folder(folder: Path, token: str | None, default_caption: str | None) -> list[TrainItem]:
    files = list_image_files(folder)
    if not files:
        raise DatasetError(f"{folder} holds no images (png, jpg, webp...)")
    uncaptioned = [f.name for f in files if not f.with_suffix(".txt").is_file()]
    if uncaptioned and default_caption is None:
        raise DatasetError(
            f"{len(uncaptioned)} image(s) in {folder} have no same-name .txt caption "
            f"({', '.join(uncaptioned[:5])}); "
            "add captions or set default_caption in the config"
        )
    items = []
    for file in files:
        text_file = file.with_suffix(".txt")
        caption = text_file.read_text(encoding="utf-8") if text_file.is_file() else default_caption or ""
        items.append(_item(file, fill_caption(caption, token), sha256_file(file), folder.name))
    return items


def _from_triplets(path: Path, token: str | None) -> list[TrainItem]:
    """Edit prompts are instructions, not descriptions: ``[trigger]`` is filled in, nothing is prepended.

    A triplet's id covers the target and every source file, so a changed source changes the dataset hash.
    """
    items = []
    for triplet in read_triplets(path):
        digest = hashlib.sha256()
        for file in (triplet.target, *triplet.controls):
            digest.update(sha256_file(file).encode("ascii"))
        caption = triplet.caption.replace(TRIGGER, token or "").strip()
        items.append(_item(triplet.target, caption, digest.hexdigest(), f"{path.name}:{triplet.line}",
                           triplet.controls))
    return items


def _is_triplets(path: Path) -> bool:
    return path.suffix == ".jsonl" or (path.is_dir() and (path / TRIPLETS_FILE).is_file())


def _read_one(
    path: Path, kind: str, token: str | None, default_caption: str | None
) -> tuple[list[TrainItem], str]:
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist")
    entry = family(kind)
    if _is_triplets(path):
        if not entry.trains_on_triplets:
            editors = " or ".join(f"flenwheel train {f.name}" for f in families(EDITOR))
            raise DatasetError(f"{path} holds edit triplets; train them with: {editors}")
        return _from_triplets(path, token), path.parent.name if path.is_file() else path.name
    if entry.trains_on_triplets:
        raise DatasetError(
            f"{path} is not a triplets.jsonl (or a folder holding one); the {entry.title} trainer "
            "learns from (source, edit prompt, target) triplets"
        )
    if path.is_file():
        if path.suffix == ".json":
            return _from_training_set(path, token)
        raise DatasetError(
            f"{path} is not a dataset: give a folder, a {TRAINING_SET_FILE} or a triplets.jsonl"
        )
    for name in sorted(set(METADATA_FILES.values())):
        if (path / name).is_file():
            return _from_dataset_version(path, path / name, token), path.name
    if (path / TRAINING_SET_FILE).is_file():
        return _from_training_set(path / TRAINING_SET_FILE, token)
    return _from_caption_folder(path, token, default_caption), path.name


def content_hash(items: list[TrainItem]) -> str:
    """Identifies the exact training data (pixels and captions), for the LoRA's metadata."""
    rows = sorted([item.id, item.caption, [str(c.name) for c in item.controls]] for item in items)
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


def read_training_data(
    paths: list[str], kind: str, token: str | None = None, default_caption: str | None = None
) -> TrainingData:
    """All items from every ``dataset_path`` entry, duplicates (same id and caption) once."""
    items: list[TrainItem] = []
    versions: list[str] = []
    seen: set[tuple[str, str]] = set()
    for entry in paths:
        found, version = _read_one(Path(entry), kind, token, default_caption)
        versions.append(version)
        for item in found:
            if (item.id, item.caption) not in seen:
                seen.add((item.id, item.caption))
                items.append(item)
    if not items:
        raise DatasetError(
            f"no training images in {', '.join(paths)} "
            "(enriched datasets contribute only images reviewed as 'good')"
        )
    return TrainingData(items, "+".join(dict.fromkeys(versions)), content_hash(items), list(paths))


def describe(data: TrainingData) -> dict[str, Any]:
    return {"items": len(data.items), "dataset_version": data.version, "dataset_hash": data.hash}
