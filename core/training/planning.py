"""Ready-to-run training configs from a character project: ``flenwheel train init`` and ``flenwheel iterate``.

What differs between base models (defaults, LoRA folders and names, images or triplets) comes from
the family's registry entry. A character-base run (FLUX.1-dev) trains on a frozen *training set*:
the project's curated sources, the enriched images reviewed as ``good`` and, from v2 on, the
pristine synthetic images of earlier versions. The list is written to
``models/flux_lora/char_vN/training_set.json`` with each image's id, sha256, caption, origin
(stage/version) and parents, so the LoRA's lineage is on disk and a resumed run provably sees the
same data. All paths in the config and the set are relative, so a project folder can move.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...trainers.config import CONFIG_FILE, parse_config, save_config
from ...trainers.datasets import EXCLUDED_LABELS, TRAINING_SET_FILE
from ..data.atomic import atomic_write_json, sha256_file
from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError
from ..data.handles import DatasetHandle
from ..data.project import Project, parse_version
from ..data.records import STAGES, ImageRecord, utc_now
from ..data.triplet_file import TRIPLETS_FILE
from ..models.registry import CHARACTER, default_family, family


@dataclass
class TrainingPlan:
    """What ``init``/``iterate`` prepared: where the config is and what the set holds."""

    kind: str
    version: str
    config_path: Path
    output_dir: Path
    counts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        parts = ", ".join(f"{n} {origin}" for origin, n in self.counts.items())
        return f"{self.kind} {self.version}: {parts} -> {self.config_path}"


def lora_versions(project: Project, kind: str) -> list[int]:
    """The version numbers of a family's LoRA folders in the project, oldest first."""
    layout = family(kind).lora
    folder = project.root / layout.folder
    if not folder.is_dir():
        return []
    return sorted(n for p in folder.iterdir() if p.is_dir() and (n := layout.version_number(p.name)) is not None)


def _output_dir(project: Project, kind: str, version: str) -> Path:
    return family(kind).lora.version_folder(project.root, version)


def _check_fresh(output: Path) -> None:
    if (output / "checkpoints").is_dir() or any(output.glob("*.safetensors")):
        raise FlenwheelError(
            f"{output} already holds training results; pick the next version (--version) "
            "or run flenwheel iterate"
        )


def _entries(dataset: DatasetVersion, records: list[ImageRecord], base: Path,
             good_only: bool) -> list[dict[str, Any]]:
    """Training-set entries (path relative to ``base``, hashes, caption, lineage) of some records."""
    found = []
    for record in records:
        if (good_only and record.label != "good") or record.label in EXCLUDED_LABELS:
            continue
        path = dataset.image_path(record)
        found.append({
            "path": os.path.relpath(path, base), "id": record.id, "sha256": sha256_file(path),
            "caption": record.caption or record.prompt or "", "origin": dataset.label,
            "parents": record.parents, "label": record.label,
        })
    return found


def _dedupe(groups: list[list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    entries, counts, seen = [], {}, set()
    for group in groups:
        for entry in group:
            if entry["id"] not in seen:
                seen.add(entry["id"])
                entries.append(entry)
                counts[entry["origin"]] = counts.get(entry["origin"], 0) + 1
    if not entries:
        raise FlenwheelError(
            "the project has no training images yet: add sources (flenwheel source add) "
            "and review enriched images"
        )
    return entries, counts


def _set_parts(project: Project, version: str) -> list[tuple[str, str]]:
    """The (stage, version) datasets the default set of ``version`` draws from."""
    number = parse_version(version)
    parts: list[tuple[str, str]] = []
    for stage in ("source", "enriched"):
        latest = project.latest_version(stage)
        if latest:
            parts.append((stage, latest))
    return parts + [("pristine", v) for v in project.versions("pristine") if parse_version(v) < number]


def build_image_set(project: Project, version: str, base: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Latest sources + latest enriched ``good`` + pristine v1..v(N-1), each image once."""
    groups = []
    for stage, dataset_version in _set_parts(project, version):
        dataset = project.dataset(stage, dataset_version)
        groups.append(_entries(dataset, dataset.records, base, good_only=stage == "enriched"))
    return _dedupe(groups)


def _usable(record: ImageRecord, stage: str) -> bool:
    return (stage != "enriched" or record.label == "good") and record.label not in EXCLUDED_LABELS


def training_records(project: Project, version: str, kind: str | None = None) -> list[ImageRecord]:
    """The records of LoRA ``version``'s training set, each image once.

    Its frozen ``training_set.json`` when one was written (what the LoRA saw), else the set
    ``init_images_run`` would freeze now; the aimed plans count their coverage on it.
    """
    entry = family(kind) if kind else default_family(CHARACTER)
    frozen = entry.lora.version_folder(project.root, version) / TRAINING_SET_FILE
    wanted: dict[str, set[str]] | None = None
    if frozen.is_file():
        try:
            items = json.loads(frozen.read_text(encoding="utf-8")).get("items") or []
        except (OSError, ValueError, AttributeError) as exc:
            raise FlenwheelError(f"{frozen} cannot be read ({exc}); move it aside or train init again") from None
        wanted = {}
        for item in items:
            wanted.setdefault(str(item.get("origin", "")), set()).add(str(item.get("id", "")))
        parts = [(stage, v) for origin in wanted for stage, _, v in [origin.partition("/")]
                 if stage in STAGES and v in project.versions(stage)]
    else:
        parts = _set_parts(project, version)
    found: dict[str, ImageRecord] = {}
    for stage, dataset_version in parts:
        dataset = project.dataset(stage, dataset_version)
        if not dataset.exists():
            continue
        for record in dataset.records:
            keep = record.id in wanted[dataset.label] if wanted is not None else _usable(record, stage)
            if keep:
                found.setdefault(record.id, record)
    return list(found.values())


def handle_set(handle: DatasetHandle, base: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records of one dataset handle (a node's wired dataset), minus rejected ones."""
    return _dedupe([_entries(handle.dataset, handle.records(), base, good_only=False)])


def _write_config(
    project: Project,
    kind: str,
    version: str,
    output: Path,
    dataset: str,
    overrides: dict[str, Any] | None,
) -> Path:
    entry = family(kind)
    raw = {
        "trainer": entry.name,
        "model": entry.hub_id,
        **entry.training_defaults,
        "dataset_path": [dataset],
        "output_path": ".",
        "output_name": entry.lora.file_stem.format(version=version),
        "project_dir": os.path.relpath(project.root, output),
        "instance_token": project.subject,
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    if entry.sample_prompts and "sample_prompts" not in raw:
        raw["sample_prompts"] = list(entry.sample_prompts)
    return save_config(parse_config(raw, f"{kind} config for {project.root}"), output / CONFIG_FILE)


def init_run(project: Project, kind: str, version: str | None = None, triplets: str | None = None,
             overrides: dict[str, Any] | None = None, dataset: DatasetHandle | None = None) -> TrainingPlan:
    """``flenwheel train init BASE PROJECT``: a character base trains on images, an editor on triplets."""
    if family(kind).trains_on_triplets:
        return init_triplets_run(project, kind, version, triplets, overrides)
    return init_images_run(project, kind, version, overrides, dataset)


def init_images_run(project: Project, kind: str, version: str | None = None,
                    overrides: dict[str, Any] | None = None, dataset: DatasetHandle | None = None) -> TrainingPlan:
    """Write ``models/flux_lora/char_vN/{training_set.json,config.yaml}`` (the family's LoRA folder) for
    the next (or given) version.

    The set is the project's default (``build_image_set``), or the records of ``dataset`` when given.
    """
    existing = lora_versions(project, kind)
    version = version or f"v{(existing[-1] + 1) if existing else 1}"
    output = _output_dir(project, kind, version)
    _check_fresh(output)
    output.mkdir(parents=True, exist_ok=True)
    if dataset is not None:
        entries, counts = handle_set(dataset, output)
    else:
        entries, counts = build_image_set(project, version, output)
    atomic_write_json(
        output / TRAINING_SET_FILE,
        {
            "version": version,
            "project": project.config.name,
            "instance_token": project.subject,
            "created": utc_now(),
            "items": entries,
        },
    )
    config = _write_config(project, kind, version, output, TRAINING_SET_FILE, overrides)
    return TrainingPlan(family(kind).name, version, config, output, counts)


def init_triplets_run(
    project: Project,
    kind: str,
    version: str | None = None,
    triplets: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainingPlan:
    """Write ``models/qwen_lora/vN/config.yaml`` (the editor's LoRA folder) for the latest (or given)
    triplets version."""
    source = triplets or project.latest_version("qwen_training")
    if source is None:
        raise FlenwheelError(
            "the project has no triplets yet (data/qwen_training/vN/); write them with the Triplet Writer node"
        )
    jsonl = project.stage_dir("qwen_training") / source / TRIPLETS_FILE
    if not jsonl.is_file():
        raise FlenwheelError(f"{jsonl} does not exist; write triplets with the Triplet Writer node first")
    existing = lora_versions(project, kind)
    version = version or f"v{(existing[-1] + 1) if existing else 1}"
    output = _output_dir(project, kind, version)
    _check_fresh(output)
    output.mkdir(parents=True, exist_ok=True)
    count = sum(1 for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip())
    config = _write_config(project, kind, version, output, os.path.relpath(jsonl, output), overrides)
    return TrainingPlan(family(kind).name, version, config, output, {f"qwen_training/{source}": count})


def iterate(project: Project, overrides: dict[str, Any] | None = None, kind: str | None = None) -> TrainingPlan:
    """Step 1.8: the vN+1 training set (sources + enriched good + pristine up to vN) and its config.

    ``kind`` is the character base (default: the registry's first character family).
    """
    entry = family(kind) if kind else default_family(CHARACTER)
    current = project.config.current.get(entry.lora.project_key)
    existing = lora_versions(project, entry.name)
    number = entry.lora.version_number(current or "") or (existing[-1] if existing else 0)
    if number == 0:
        raise FlenwheelError(
            f"no {entry.title} LoRA has been trained yet; start with: flenwheel train init {entry.name} PROJECT"
        )
    pristine = f"v{number}"
    if pristine not in project.versions("pristine") or not project.dataset("pristine", pristine).records:
        raise FlenwheelError(
            f"data/pristine/{pristine} holds no images yet; review "
            f"{entry.lora.version_dir.format(version=pristine)}'s synthetic images "
            "and mark the "
            "best as pristine before iterating"
        )
    return init_images_run(project, entry.name, f"v{number + 1}", overrides)


def prepare_run(project: Project, kind: str, choice: str = "latest", overrides: dict[str, Any] | None = None,
                dataset: DatasetHandle | None = None) -> TrainingPlan:
    """The run a node (or script) should start.

    ``latest`` continues the newest version (a new v1 when there is none), ``new`` prepares the next
    version, ``vN`` that version. A new version trains on ``dataset`` when given (for qwen-edit, a
    triplets version), else on the project's default data. Settings in ``overrides`` are written into
    an existing version's config; its frozen data stays as it is.
    """
    from ...trainers.config import load_config

    existing = lora_versions(project, kind)
    choice = (choice or "latest").strip()
    version = None if choice == "new" or (choice == "latest" and not existing) else (
        f"v{existing[-1]}" if choice == "latest" else choice)
    if version is not None:
        parse_version(version)
        output = _output_dir(project, kind, version)
        if (output / CONFIG_FILE).is_file():
            config = load_config(output / CONFIG_FILE, kind)
            changed = config.model_dump() | {k: v for k, v in (overrides or {}).items() if v is not None}
            updated = parse_config(changed, str(output / CONFIG_FILE))
            save_config(_relative(updated, output), output / CONFIG_FILE)
            return TrainingPlan(kind, version, output / CONFIG_FILE, output, {})
    entry = family(kind)
    if not entry.trains_on_triplets:
        return init_images_run(project, kind, version, overrides, dataset)
    if dataset is not None and dataset.dataset.stage != "qwen_training":
        raise FlenwheelError(
            f"the {entry.title} trainer needs a triplets dataset (qwen_training), not {dataset.label}"
        )
    return init_triplets_run(project, kind, version, dataset.dataset.version if dataset else None, overrides)


def _relative(config, output: Path):
    """Keep the paths of a rewritten project config relative to its folder, as ``init`` wrote them."""
    data = config.model_dump()
    data["dataset_path"] = [os.path.relpath(p, output) for p in config.dataset_path]
    data["output_path"] = "."
    if config.project_dir:
        data["project_dir"] = os.path.relpath(config.project_dir, output)
    return parse_config(data)


def finished_lora(config) -> Path | None:
    """The final LoRA when this config's run is complete (its header records max_train_steps steps)."""
    from ...trainers.lora_io import read_metadata

    path = config.output_dir / config.lora_filename()
    if not path.is_file():
        return None
    steps = read_metadata(path).get("flenwheel.steps", "")
    return path if steps.isdigit() and int(steps) >= config.max_train_steps else None
