"""A flywheel step's plan as items for a native ComfyUI graph: what to make, with which prompt and seed.

FLENwheel's own nodes render with their own pipelines; a native graph renders with ComfyUI's
loaders and samplers instead. Both must fill the same datasets, so the plan is the engine's own
(``enrich.plan``, ``generate.prompt_sets``, ``benchmark.model_card``) and only the rendering moves
into the graph. ``plan_items`` picks the target dataset version, stores every planned item (its
prompt, seed and the lineage its record will carry) in the version's ``info["graph"]``, and returns
the items still missing, so queueing the graph again only makes what is not on disk yet.

An item id is ``<stage>/<version>#<key>`` (``enriched/v2#<source id>:<slot>``,
``synthetic/v1#<prompt id>:<variant>``, ``benchmark/v1#<cell>:<try>``): it names the dataset it
belongs to, so the save side can refuse an image that does not belong to the plan.
A drifted image sent back by the save side (``attempts``) is planned again with a new seed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..benchmark.model_card import load_card
from ..benchmark.run import benchmark_label, try_tags
from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError
from ..data.project import Project, check_name, parse_version
from ..enrich.plan import EnrichSettings, make_plan, planned_fields
from ..enrich.qwen_edit import derive_seed as edit_seed
from ..generate.aim import aimed_plan, load_needs

STAGE_OF = {"enrich": "enriched", "generate": "synthetic", "model_card": "benchmark"}
SEPARATOR = "#"
ENGINE = "native ComfyUI graph"
#: A planner's summary lines (shown by the node and the CLI, not stored in the version's info).
AIM_LINES = "aim_lines"


@dataclass(frozen=True)
class Item:
    """One image a graph should make, at the plan's size; ``source`` is the picture to edit (enrichment only)."""

    id: str
    prompt: str
    seed: int
    width: int
    height: int
    source: Path | None = None


@dataclass
class ItemPlan:
    """The target version, the items still to make, and counts for the summary."""

    dataset: DatasetVersion
    items: list[Item]
    planned: int
    done: int
    retries: list[str] = field(default_factory=list)
    aim: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"{self.dataset.label}: {self.planned} planned, {self.done} already in it, "
                 f"{len(self.items)} to make now", *self.aim]
        if self.retries:
            lines.append(f"{len(self.retries)} drifted item(s) retried with new seeds: {', '.join(self.retries)}")
        if not self.items:
            lines.append("nothing left to make: the downstream nodes are skipped")
        return lines


def item_id(label: str, key: str) -> str:
    return f"{label}{SEPARATOR}{key}"


def parse_item_id(text: str) -> tuple[str, str, str]:
    """``(stage, version, key)`` of an item id, with an error naming what is wrong."""
    label, sep, key = (text or "").strip().partition(SEPARATOR)
    stage, slash, version = label.partition("/")
    if not (sep and slash and key and stage in STAGE_OF.values() and version):
        raise FlenwheelError(f"'{text}' is not a FLENwheel item id (expected e.g. enriched/v2#<key>); "
                             "connect the item_id output of FLENwheel Flywheel Items")
    try:
        parse_version(version)
        check_name(key.replace(":", "_"), "item key")
    except FlenwheelError as exc:
        raise FlenwheelError(f"'{text}' is not a FLENwheel item id ({exc})") from None
    return stage, version, key


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of a retry: attempt 0 is the planned seed, each retry derives a new one (as the gate does)."""
    return seed if attempt == 0 else edit_seed(seed, "retry", attempt)


def _key_of(step: str, settings: dict[str, Any]) -> str:
    canonical = json.dumps({"step": step, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _enrich_entries(project: Project, settings: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict]:
    enrich = EnrichSettings(per_source=settings["per_source"], families=tuple(settings["families"]),
                            seed=settings["seed"], template_files=tuple(settings["template_files"]))
    plan = make_plan(project, enrich)
    entries = {}
    for edit in plan.edits:
        record = plan.records[edit.source_index]
        entries[plan.key(edit)] = {
            "prompt": plan.templates.prompt(edit.family, edit.value),
            "seed": edit_seed(enrich.seed, record.id, edit.slot),
            "stem": f"{Path(record.filename).stem}_{edit.slot}_{edit.family}_{edit.value}",
            "source": plan.source.dataset.image_path(record).relative_to(project.root).as_posix(),
            "width": record.width, "height": record.height,
            "fields": planned_fields(project, plan, edit),
        }
    return entries, {"source_dataset": plan.source.label, "families": plan.families,
                     "templates": plan.templates.to_json(plan.families)}


def _generate_entries(project: Project, settings: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict]:
    """The prompt set's images, aimed (``generate.aim``) by the newest card up to the LoRA ``label``
    renders with and by the coverage of that LoRA's training set."""
    needs = load_needs(project, settings["label"])
    aimed = aimed_plan(project, needs, settings["prompt_files"], families=settings["families"] or None,
                       variants=settings["variants"], base_seed=settings["seed"])
    prompt_set, planned = aimed.prompt_set, aimed.plan
    entries = {
        f"{item.prompt_id}:{item.variant}": {
            "prompt": item.prompt, "seed": item.seed, "stem": f"{item.family}_{item.prompt_id}_v{item.variant:02d}",
            "width": item.settings.width, "height": item.settings.height, "fields": item.tags(),
        }
        for item in planned
    }
    return entries, {"prompt_sources": prompt_set.sources, "aim": aimed.allocation.to_json(),
                     AIM_LINES: aimed.allocation.lines()}


def _card_entries(project: Project, settings: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict]:
    card = load_card(settings["card_files"], tries=settings["tries"])
    cells = card.cells(project.subject, project.token)
    entries = {}
    for index in range(card.tries):
        for cell in cells:
            entries[f"{cell.id}:{index}"] = {
                "prompt": cell.prompt, "seed": cell.seeds[index], "stem": f"{cell.id}_try{index}",
                "width": cell.settings.width, "height": cell.settings.height, "fields": try_tags(cell, index),
            }
    card_info = {"target": card.target, "tries": card.tries, "angles": card.angles, "expressions": card.expressions,
                 "sources": card.sources, "base_seed": card.base_seed, "render": card.render,
                 "cells": [cell.to_json() for cell in cells]}
    return entries, {"lora_label": settings["label"], "card": card_info}


PLANNERS = {"enrich": _enrich_entries, "generate": _generate_entries, "model_card": _card_entries}


def _target(project: Project, stage: str, key: str, info: dict[str, Any], new_version: bool) -> DatasetVersion:
    """The latest version planned with these settings, open or finished with every item; else a new one."""
    if not new_version:
        for version in reversed(project.versions(stage)):
            dataset = DatasetVersion(project, stage, version)
            if not dataset.exists():
                continue
            metadata = dataset.load()
            if (metadata.info.get("graph") or {}).get("settings_key") != key:
                continue
            if metadata.status != "finished" or set(info["graph"]["items"]) <= done_keys(dataset):
                return dataset
    return project.create_dataset(stage, info=info)


def done_keys(dataset: DatasetVersion) -> set[str]:
    """Item keys whose image is on disk in ``dataset``."""
    return {extra["item_key"] for record in dataset.records
            if "item_key" in (extra := record.model_extra or {}) and dataset.image_path(record).is_file()}


def plan_items(project: Project, step: str, *, per_source: int = 4, families: Sequence[str] = (),
               seed: int = 0, template_files: Sequence[str] = (), prompt_files: Sequence[str] = (),
               variants: int | None = None, card_files: Sequence[str] = (), tries: int | None = None,
               label: str = "char_v1", new_version: bool = False) -> ItemPlan:
    """Plan one step for a native graph (see the module docstring)."""
    if step not in PLANNERS:
        raise FlenwheelError(f"unknown step '{step}'; use one of {', '.join(PLANNERS)}")
    settings: dict[str, Any] = {
        "enrich": {"per_source": per_source, "families": list(families), "seed": seed,
                   "template_files": [str(f) for f in template_files]},
        "generate": {"prompt_files": [str(f) for f in prompt_files], "families": list(families), "variants": variants,
                     "seed": seed, "label": benchmark_label(label)},
        "model_card": {"card_files": [str(f) for f in card_files], "tries": tries, "label": benchmark_label(label)},
    }[step]
    entries, extra = PLANNERS[step](project, settings)
    aim = extra.pop(AIM_LINES, [])
    key = _key_of(step, {**settings, "planned": sorted(entries)})
    stage = STAGE_OF[step]
    graph = {"step": step, "settings": settings, "settings_key": key, "items": entries, "attempts": {}}
    info = {"engine": ENGINE, **extra, "graph": graph}
    if step == "model_card":
        info["signature"] = {"graph": key}
    dataset = _target(project, stage, key, info, new_version)
    attempts = (dataset.load().info.get("graph") or {}).get("attempts") or {}
    done = done_keys(dataset)
    items = []
    for entry_key, entry in entries.items():
        if entry_key in done:
            continue
        source = project.root / entry["source"] if "source" in entry else None
        items.append(Item(item_id(dataset.label, entry_key), entry["prompt"],
                          attempt_seed(entry["seed"], attempts.get(entry_key, 0)), entry["width"] or 1024,
                          entry["height"] or 1024, source))
    retries = [item.id for item in items if attempts.get(item.id.partition(SEPARATOR)[2], 0)]
    return ItemPlan(dataset, items, len(entries), len([k for k in entries if k in done]), retries, aim)
