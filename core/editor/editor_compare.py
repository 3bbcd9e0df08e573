"""compare-editors (seed step 2.3): the same sources, templates and seeds through several editors.

Each editor (``base``, a named LoRA file such as ``dx8152:/loras/multiple-angles.safetensors:1.25``,
or ``ours:v1``, LoRAs stacked with ``+``) enriches the latest sources into its own enriched version,
whose info records which editor made it. The plan and every seed come from the same settings, so
the versions differ only by the editor. After the versions are reviewed, ``editor_report`` turns
the decisions into the seed's success criteria.

A comparison is stored in ``benchmarks/editors/<name>/comparison.json`` the moment each editor's
version is chosen, so an interrupted run resumes: rerunning with the same name continues each
editor's version and skips the edits already on disk.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.atomic import atomic_write_json
from ..data.errors import FlenwheelError, ImageLoadError
from ..data.handles import DatasetHandle
from ..data.images import load_image, pixel_hash
from ..data.project import Project, check_name, inside, parse_version
from ..data.records import utc_now
from ..data.text_lists import split_list
from ..data.triplet_file import TRIPLETS_FILE, control_keys, read_lines
from ..enrich.edit_prompts import default_families, load_templates
from ..enrich.enrich import EnrichResult, enrich
from ..enrich.plan import EnrichSettings
from ..identity.gate import IdentityGate
from ..models.editor_lora import OURS, resolve_lora
from ..models.loras import LoraSpec, set_loras
from ..models.pipelines import PipelineHandle

LOG = logging.getLogger("flenwheel.compare_editors")
COMPARISON_FILE = "comparison.json"
BASE = "base"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


class CompareError(FlenwheelError):
    """An editor list or comparison that cannot be used as given."""


@dataclass(frozen=True)
class Editor:
    """One editor under comparison: a label and the LoRAs on the base model (none for ``base``)."""

    label: str
    loras: tuple[LoraSpec, ...] = ()


def _part(text: str, project: Project) -> tuple[str, LoraSpec]:
    """One LoRA of an editor: ``ours[:vN][:S]``, ``NAME:PATH[:S]`` or ``PATH[:S]`` -> (label, spec)."""
    head, sep, rest = text.partition(":")
    if head == OURS:
        parts = [p for p in rest.split(":") if p]
        label = f"{OURS}:{parts[0]}" if parts and parts[0].startswith("v") else OURS
        return label, resolve_lora(text, project)
    if sep and len(head) > 1 and _NAME.match(head) and not rest.replace(".", "", 1).isdigit():
        return head, resolve_lora(rest, project)
    spec = resolve_lora(text, project)
    return Path(spec.path).stem, spec


def parse_editors(texts: Sequence[str], project: Project) -> list[Editor]:
    """Editors from ``base,dx8152:PATH,ours:v1`` style entries (commas or repeated options)."""
    entries = split_list(texts)
    if len(entries) < 2:
        raise CompareError("compare at least two editors, e.g. --editors base,ours:v1")
    editors = []
    for entry in entries:
        if entry == BASE:
            editors.append(Editor(BASE))
            continue
        parts = [_part(piece.strip(), project) for piece in entry.split("+")]
        editors.append(Editor("+".join(label for label, _ in parts), tuple(spec for _, spec in parts)))
    labels = [editor.label for editor in editors]
    if len(set(labels)) != len(labels):
        raise CompareError(f"two editors share a label ({', '.join(labels)}); name them, e.g. mine:PATH")
    return editors


def shared_families(settings: EnrichSettings, editors: list[Editor]) -> tuple[str, ...]:
    """One family list for every editor: what the run names, else the defaults for all their LoRAs
    together (so an angle LoRA's camera commands go to the base model too, and the plans match)."""
    if settings.families:
        return settings.families
    paths = [spec.path for editor in editors for spec in editor.loras]
    return tuple(default_families(load_templates(settings.template_files), paths))


def editor_handle(base: PipelineHandle, editor: Editor) -> PipelineHandle:
    """A handle on the loaded base model (nothing reloaded) with exactly this editor's LoRAs."""
    handle = dataclasses.replace(base, loras=[], lora_specs=())
    set_loras(handle, list(editor.loras))
    return handle


def comparisons_dir(project: Project) -> Path:
    return project.benchmarks_dir / "editors"


def comparison_names(project: Project) -> list[str]:
    folder = comparisons_dir(project)
    names = [p.name for p in folder.iterdir() if (p / COMPARISON_FILE).is_file()] if folder.is_dir() else []
    return sorted(names, key=lambda n: (parse_version(n), n) if re.match(r"^v[1-9][0-9]*$", n) else (10**9, n))


def load_comparison(project: Project, name: str | None = None) -> dict[str, Any]:
    """A stored comparison (the newest when ``name`` is None)."""
    names = comparison_names(project)
    chosen = name or (names[-1] if names else None)
    if chosen is None:
        raise CompareError("the project has no editor comparison yet; run: flenwheel compare-editors PROJECT "
                           "--editors base,ours:v1")
    file = inside(comparisons_dir(project), chosen, what="comparison name", within=project.root) / COMPARISON_FILE
    if not file.is_file():
        raise CompareError(f"no editor comparison named '{chosen}' (have: {', '.join(names) or 'none'})")
    return json.loads(file.read_text(encoding="utf-8"))


@dataclass
class ComparisonRun:
    name: str
    folder: Path
    data: dict[str, Any]
    results: dict[str, EnrichResult] = field(default_factory=dict)
    stopped: bool = False


def _start(project: Project, name: str | None, editors: list[Editor], settings: EnrichSettings,
           source: DatasetHandle) -> tuple[str, dict[str, Any]]:
    if name is not None:
        check_name(name, "comparison name")
    existing = comparison_names(project)
    name = name or f"v{1 + max((parse_version(n) for n in existing if re.match(r'^v[1-9][0-9]*$', n)), default=0)}"
    wanted = [{"label": e.label, "loras": [dataclasses.asdict(s) for s in e.loras]} for e in editors]
    if name in existing:
        data = load_comparison(project, name)
        if data["settings"] != settings.to_json() or data["source_dataset"] != source.label or \
                [{k: e[k] for k in ("label", "loras")} for e in data["editors"]] != wanted:
            raise CompareError(f"comparison '{name}' was run with other editors or settings; leave --name out "
                               "to start a new comparison")
        return name, data
    return name, {"name": name, "created": utc_now(), "source_dataset": source.label,
                  "source_subset": sorted(source.ids) if source.ids is not None else None,
                  "settings": settings.to_json(), "editors": [w | {"version": None} for w in wanted]}


def run_comparison(project: Project, base: PipelineHandle, editors: list[Editor], settings: EnrichSettings,
                   name: str | None = None, source: DatasetHandle | None = None,
                   scorer: IdentityGate | None = None, log: Callable[[str], None] = LOG.info,
                   should_stop: Callable[[], bool] | None = None,
                   on_progress: Callable[[int, int, Any], None] | None = None) -> ComparisonRun:
    """Enrich the same sources with every editor into separate enriched versions (resumable).

    The identity gate only scores (no retries), so each editor is judged on its own first attempt.
    ``on_progress(done, total, image)`` counts over all editors (every editor has the same plan).
    """
    source = source or DatasetHandle(project.dataset("source"))
    settings = dataclasses.replace(settings, max_retries=0, families=shared_families(settings, editors))
    name, data = _start(project, name, editors, settings, source)
    folder = comparisons_dir(project) / name
    run = ComparisonRun(name, folder, data)
    for index, (editor, entry) in enumerate(zip(editors, data["editors"], strict=True)):
        if entry["version"] is None:
            entry["version"] = project.next_version("enriched")
        atomic_write_json(folder / COMPARISON_FILE, data)
        log(f"editor {editor.label} -> enriched/{entry['version']}")
        progress = None if on_progress is None else (
            lambda done, total, image=None, i=index: on_progress(i * total + done, len(editors) * total, image))
        result = enrich(project, editor_handle(base, editor), settings, scorer=scorer, source=source,
                        version=entry["version"], log=log, should_stop=should_stop, on_progress=progress)
        result.dataset.update_info(editor={"label": editor.label, "loras": result.dataset.load().info["loras"],
                                           "comparison": name})
        run.results[editor.label] = result
        if result.stopped:
            run.stopped = True
            break
    return run


def _triplet_source_ids(jsonl: Path) -> set[str]:
    """Every source a triplet used: its lineage ids (``source_id``, ``reference_id``) and the content id of
    each control image (``control_path``, ``control_path_1``...), so a hand-written file without lineage,
    or a second view given only as ``control_path_1``, still counts as used."""
    used: set[str] = set()
    for _, line in read_lines(jsonl)[1]:
        if not isinstance(line, dict):
            continue
        used.update(str(line[key]) for key in ("source_id", "reference_id") if line.get(key))
        for key in control_keys(line):
            path = jsonl.parent / str(line[key])
            try:
                used.add(pixel_hash(load_image(path)))
            except ImageLoadError:
                continue
    return used


def held_back_sources(project: Project, triplets: str | None, limit: int) -> tuple[DatasetHandle, str]:
    """Up to ``limit`` sources no triplet of ``qwen_training/<triplets>`` used, as its source or as a second
    control (all sources when every one was), so a new editor is judged on photos it was not trained on;
    and a note saying which."""
    sources = project.dataset("source")
    jsonl = project.stage_dir("qwen_training") / triplets / TRIPLETS_FILE if triplets else None
    used = _triplet_source_ids(jsonl) if jsonl is not None and jsonl.is_file() else set()
    ids = [record.id for record in sources.records]
    held = [i for i in ids if i not in used] or ids
    note = "held back from the triplets" if len(held) < len(ids) or not used else \
        "every source made a triplet, so the comparison uses sources the new editor was trained on"
    return DatasetHandle(sources, tuple(held[:limit])), note
