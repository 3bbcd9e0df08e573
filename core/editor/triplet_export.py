"""Exporting triplets for the two trainers people use for Qwen-Image-Edit-2509 LoRAs.

- ``musubi`` (kohya-ss/musubi-tuner): the images, a ``triplets.jsonl`` whose ``image_path`` /
  ``control_path`` / ``control_path_1`` point at them (absolute paths by default: musubi resolves
  relative paths against its working folder), and a ``dataset_config.toml`` that names the JSONL.
- ``aitoolkit`` (ostris/ai-toolkit): ``target/`` images with same-name ``.txt`` captions and
  ``control/`` (and ``control_1/``) images with the same file names, plus a ``datasets:`` snippet
  for the job YAML (``arch: qwen_image_edit_plus``). ai-toolkit needs a file in every control
  folder for every target, so triplets with a second view go into their own ``with_reference/``
  group when only some have one.

``read_export`` reads either layout back into plain triplets, so an export can be checked against
the version it came from (``flenwheel triplets export`` does this after writing).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..data.atomic import atomic_copy, atomic_write_text
from ..data.errors import FlenwheelError
from ..data.images import load_image, pixel_hash
from ..data.project import Project
from ..data.triplet_file import TRIPLETS_FILE, control_keys, read_lines
from .triplet_check import validate_triplets

FORMATS = ("musubi", "aitoolkit")
DUAL_GROUP = "with_reference"
MUSUBI_CONFIG = "dataset_config.toml"
AITOOLKIT_CONFIG = "aitoolkit_datasets.yaml"


@dataclass(frozen=True)
class PlainTriplet:
    """A triplet by content: what both layouts must preserve."""

    caption: str
    target: str
    controls: tuple[str, ...]


@dataclass
class ExportResult:
    folder: Path
    format: str
    count: int
    config: Path


def _resolve(base: Path, value: str) -> Path:
    return Path(value) if Path(value).is_absolute() else base / value


def _triplets(jsonl: Path) -> list[tuple[dict[str, Any], Path, list[Path]]]:
    """(line, target path, control paths) for every line of a validated file."""
    file, lines = read_lines(jsonl)
    return [(line, _resolve(file.parent, line["image_path"]),
             [_resolve(file.parent, line[key]) for key in control_keys(line)]) for _, line in lines]


def default_export_dir(project: Project, version: str, fmt: str) -> Path:
    return project.root / "exports" / f"qwen_training_{version}_{fmt}"


def _prepare(folder: Path, overwrite: bool) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise FlenwheelError(f"{folder} is not empty; pick another --out or pass --overwrite")
        if not ((folder / TRIPLETS_FILE).is_file() or (folder / AITOOLKIT_CONFIG).is_file()):
            raise FlenwheelError(f"{folder} does not look like a FLENwheel triplet export; refusing to clear it")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def _musubi(items: list[tuple[dict[str, Any], Path, list[Path]]], folder: Path, relative: bool) -> Path:
    rows = []
    for line, target, controls in items:
        name = target.name
        paths = {"image_path", "failed_edit_path", *control_keys(line)}
        row = {key: value for key, value in line.items() if key not in paths}
        atomic_copy(target, folder / "target" / name)
        row["image_path"] = f"target/{name}" if relative else str((folder / "target" / name).resolve())
        for index, control in enumerate(controls):
            sub = "control" if index == 0 else f"control_{index}"
            atomic_copy(control, folder / sub / name)
            row["control_path" if index == 0 else f"control_path_{index}"] = (
                f"{sub}/{name}" if relative else str((folder / sub / name).resolve()))
        rows.append(row)
    jsonl = folder / TRIPLETS_FILE
    atomic_write_text(jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    config = folder / MUSUBI_CONFIG
    atomic_write_text(config, (
        "# musubi-tuner dataset config for Qwen-Image-Edit-2509 triplets, exported by FLENwheel.\n"
        "# Cache latents and text encoder outputs with --model_version edit-2509, then train with\n"
        "# qwen_image_train_network.py --model_version edit-2509 --dataset_config this file.\n"
        "[general]\nresolution = [1024, 1024]\nbatch_size = 1\nenable_bucket = true\nbucket_no_upscale = false\n\n"
        f"[[datasets]]\nimage_jsonl_file = {json.dumps(str(jsonl.resolve()))}\n"
        f"cache_directory = {json.dumps(str((folder / 'cache').resolve()))}\nnum_repeats = 1\n"
    ))
    return config


def _aitoolkit(items: list[tuple[dict[str, Any], Path, list[Path]]], folder: Path) -> Path:
    widest = max(len(controls) for _, _, controls in items)
    mixed = any(len(controls) != widest for _, _, controls in items)
    groups: dict[Path, int] = {}
    for line, target, controls in items:
        root = folder / DUAL_GROUP if mixed and len(controls) == widest else folder
        groups[root] = len(controls)
        atomic_copy(target, root / "target" / target.name)
        atomic_write_text((root / "target" / target.name).with_suffix(".txt"), line["caption"] + "\n")
        for index, control in enumerate(controls):
            sub = "control" if index == 0 else f"control_{index}"
            atomic_copy(control, root / sub / target.name)
    datasets = [{"folder_path": str((root / "target").resolve()),
                 "control_path": [str((root / ("control" if i == 0 else f"control_{i}")).resolve())
                                  for i in range(count)],
                 "caption_ext": "txt", "resolution": [512, 768, 1024]}
                for root, count in sorted(groups.items())]
    config = folder / AITOOLKIT_CONFIG
    atomic_write_text(config, "# ai-toolkit `datasets:` for a Qwen-Image-Edit-2509 job (model arch: "
                              "qwen_image_edit_plus), exported by FLENwheel\n"
                      + yaml.safe_dump({"datasets": datasets}, sort_keys=False))
    return config


def export_triplets(project: Project, version: str | None = None, fmt: str = "musubi", out: str | Path | None = None,
                    overwrite: bool = False, relative: bool = False) -> ExportResult:
    """Copy a triplets version into the layout ``fmt`` reads, then check the copy reads back the same."""
    if fmt not in FORMATS:
        raise FlenwheelError(f"unknown export format '{fmt}'; use one of {', '.join(FORMATS)}")
    dataset = project.dataset("qwen_training", version)
    jsonl = dataset.path / TRIPLETS_FILE
    validate_triplets(jsonl).raise_for_errors()
    items = _triplets(jsonl)
    folder = Path(out).expanduser().resolve() if out else default_export_dir(project, dataset.version, fmt)
    _prepare(folder, overwrite)
    config = _musubi(items, folder, relative) if fmt == "musubi" else _aitoolkit(items, folder)
    if sorted(read_export(folder), key=repr) != sorted(read_version(jsonl), key=repr):
        raise FlenwheelError(f"the export in {folder} does not read back as {dataset.label}; it is incomplete")
    return ExportResult(folder, fmt, len(items), config)


def read_version(jsonl: Path) -> list[PlainTriplet]:
    return [PlainTriplet(line["caption"], pixel_hash(load_image(target)),
                         tuple(pixel_hash(load_image(c)) for c in controls))
            for line, target, controls in _triplets(jsonl)]


def _read_folder_group(root: Path) -> list[PlainTriplet]:
    found = []
    controls = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("control")),
                      key=lambda p: (len(p.name), p.name))
    for target in sorted((root / "target").glob("*")):
        if target.suffix == ".txt" or target.name.startswith("."):
            continue
        caption = target.with_suffix(".txt").read_text(encoding="utf-8").strip()
        paths = [folder / target.name for folder in controls if (folder / target.name).is_file()]
        found.append(PlainTriplet(caption, pixel_hash(load_image(target)),
                                  tuple(pixel_hash(load_image(p)) for p in paths)))
    return found


def read_export(folder: str | Path) -> list[PlainTriplet]:
    """The triplets of an export folder in either layout."""
    root = Path(folder)
    if (root / TRIPLETS_FILE).is_file():
        return read_version(root / TRIPLETS_FILE)
    groups = [group for group in (root, root / DUAL_GROUP) if (group / "target").is_dir()]
    if not groups:
        raise FlenwheelError(f"{root} holds neither a {TRIPLETS_FILE} nor a target/ folder")
    return [triplet for group in groups for triplet in _read_folder_group(group)]

