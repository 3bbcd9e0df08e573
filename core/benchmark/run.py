"""The model card benchmark: generate every cell k times, check each image, write the scoreboard.

``run_benchmark`` renders the card's cells try by try (every cell's first try before any second
try, so an interrupted run already has a first-try card), adds each image to a ``benchmark``
dataset version (``data/benchmark/vN/``, which the review page shows for the human verdicts),
scores it with ``card_checks.CardScorer`` and stores the checks in its record. Each image is
committed before progress is reported, and progress callbacks are ComfyUI's interrupt points, so
a rerun resumes: a try whose prompt, seed, settings, model and LoRAs are already recorded is not
rendered again, and its stored checks are reused while the scoring inputs (references, limits,
selected checks, pose model) are unchanged.

The dataset version is found by the run's label (``char_v1``) and signature (base model plus LoRA
hashes and strengths), and the card's cells and the scoring settings are kept in its ``info``, so
``benchmark_results.write_outputs`` can rebuild results.json, model_card.png and report.html later
from the records and the review verdicts alone, without loading a model.

Images come from a ``Renderer``: ``FluxRenderer`` wraps a FLUX pipeline handle with its LoRAs;
tests and users may pass any other (e.g. one that returns real photos).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.distributed import Processes
from ..data.errors import FlenwheelError
from ..data.handles import DatasetHandle
from ..data.images import load_image
from ..data.project import Project, check_name
from ..data.records import ImageRecord
from ..generate.generate import Generated, StepCallback, active_loras, generate_batch, model_label
from ..models.character_lora import lora_version_of
from ..models.pipelines import PipelineHandle
from ..review.gate import GateScope, scope_for
from ..vision.body_pose import open_pose_model
from .checks import CardScorer, CheckResult, parse_checks
from .model_card import Card, Cell

STAGE = "benchmark"
ImageCallback = Callable[[int, int, Image.Image, ImageRecord], None]


class Renderer(Protocol):
    """Makes the image for one try of one cell; ``signature`` names what makes them (model + LoRAs)."""

    def signature(self) -> dict[str, Any]: ...

    def label(self) -> str: ...

    def render(self, cell: Cell, seed: int, step_callback: StepCallback | None) -> Generated: ...


@dataclass
class FluxRenderer:
    """FLUX + the handle's LoRAs, through the generation engine (same seeds as any other run)."""

    handle: PipelineHandle

    def signature(self) -> dict[str, Any]:
        refs = active_loras(self.handle)
        return {"model": model_label(self.handle),
                "loras": [{"sha256": r.sha256, "strength": float(r.strength), "path": r.path} for r in refs]}

    def label(self) -> str:
        """``char_vN`` of the character LoRA; else the single LoRA file's stem (made a name), or ``base``."""
        refs = active_loras(self.handle)
        versions = [v for ref in refs if (v := lora_version_of(ref.path))]
        if versions:
            return versions[0]
        return re.sub(r"[^A-Za-z0-9_.+\-]+", "_", Path(refs[0].path).stem).lstrip("._") or "lora" if refs else "base"

    def render(self, cell: Cell, seed: int, step_callback: StepCallback | None) -> Generated:
        return generate_batch(self.handle, [cell.prompt], [seed], cell.settings, step_callback)[0]


@dataclass
class BenchmarkRun:
    """What one run did: the dataset it wrote to, and counts for the summary line."""

    project: Project
    label: str
    dataset: DatasetVersion
    cells: list[Cell]
    generated: int = 0
    reused: int = 0
    rescored: int = 0
    seconds: float = 0.0
    first_try_ids: list[str] = field(default_factory=list)
    all_ids: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.dataset.label} ({self.label}): {self.generated} generated, {self.reused} reused "
                f"from an earlier run, {self.rescored} scored, {self.seconds:.1f} s"]


def try_key(cell: Cell, seed: int) -> tuple[Any, ...]:
    """What makes a try the same request within one dataset (whose model and LoRAs are fixed)."""
    return (cell.id, cell.prompt, seed, tuple(sorted(vars(cell.settings).items())))


def record_try_key(record: ImageRecord) -> tuple[Any, ...] | None:
    """The ``try_key`` a benchmark record was made for (None for a record of something else)."""
    extra = record.model_extra or {}
    if "cell" not in extra or "card_settings" not in extra:
        return None
    return (extra["cell"], record.prompt, record.seed, tuple(sorted(extra["card_settings"].items())))


def find_dataset(project: Project, label: str, signature: dict[str, Any], info: dict[str, Any]) -> DatasetVersion:
    """The benchmark version made for ``label`` with this model and LoRAs, or a new one."""
    for version in reversed(project.versions(STAGE)):
        dataset = DatasetVersion(project, STAGE, version)
        if not dataset.exists():
            continue
        stored = dataset.load().info
        if stored.get("lora_label") == label and stored.get("signature") == signature:
            dataset.update_info(**info)
            return dataset
    return project.create_dataset(STAGE, info=info)


def benchmark_label(text: str) -> str:
    """``v2`` or ``char_v2`` -> ``char_v2``; other labels (a LoRA stem, ``base``) stay as they are."""
    text = text.strip()
    return check_name(f"char_{text}" if text[:1] == "v" and text[1:].isdigit() else text, "benchmark label")


def run_benchmark(
    project: Project,
    renderer: Renderer,
    card: Card,
    *,
    checks: Sequence[str] | str | None = None,
    label: str | None = None,
    pose_python: str | None = None,
    source_version: str | None = None,
    on_image: ImageCallback | None = None,
    step_callback: StepCallback | None = None,
) -> BenchmarkRun:
    """Render, check and record every try of every cell that is not already done (see module doc)."""
    start = time.perf_counter()
    chosen = benchmark_label(label or renderer.label())
    if not chosen or any(c in chosen for c in "/\\:") or chosen.startswith("."):
        raise FlenwheelError(f"'{chosen}' cannot name a benchmark folder; use e.g. char_v1")
    cells = card.cells(project.subject, project.token)
    with contextlib.ExitStack() as stack:
        pose_model = open_pose_model(pose_python) if "body_pose" in parse_checks(checks) else None
        if pose_model is not None:
            stack.callback(pose_model.close)
        scorer = CardScorer.from_project(project, card, checks, pose_model, source_version)
        signature = renderer.signature()
        info = {
            "engine": "flenwheel benchmark",
            "lora_label": chosen,
            "signature": signature,
            "card": {"target": card.target, "tries": card.tries, "angles": card.angles,
                     "expressions": card.expressions, "sources": card.sources, "base_seed": card.base_seed,
                     "render": card.render,
                     "cells": [cell.to_json() for cell in cells]},
            "scoring": scorer.settings_json(),
        }
        processes = Processes.current()
        processes.agree("benchmark settings", info)
        dataset = DatasetVersion(project, STAGE,
                                 processes.on_main(lambda: find_dataset(project, chosen, signature, info).version))
        run = BenchmarkRun(project, chosen, dataset, cells)
        _render_all(run, renderer, scorer, card.tries, on_image, step_callback, processes)
    run.seconds = time.perf_counter() - start
    return run


def _scored(record: ImageRecord | None, fingerprint: str, cell: Cell) -> bool:
    stored = (record.scores.get("benchmark") or {}) if record is not None else {}
    return stored.get("fingerprint") == fingerprint and stored.get("cell_checks") == list(cell.checks)


def _render_all(run: BenchmarkRun, renderer: Renderer, scorer: CardScorer, tries: int,
                on_image: ImageCallback | None, step_callback: StepCallback | None,
                processes: Processes) -> None:
    """Every try, first tries first; under a launcher each process takes a share of the unfinished ones."""
    total = tries * len(run.cells)
    done = 0
    fingerprint = scorer.fingerprint()
    recorded = {record_try_key(record): record for record in run.dataset.records}
    jobs = [try_key(cell, cell.seeds[index]) for index in range(tries) for cell in run.cells]
    unfinished = [key for key, cell in zip(jobs, run.cells * tries, strict=True)
                  if not _scored(recorded.get(key), fingerprint, cell)]
    processes.agree("list of tries still to make", unfinished)
    others = set(unfinished) - set(processes.split(unfinished))
    for index in range(tries):
        for cell in run.cells:
            seed = cell.seeds[index]
            if try_key(cell, seed) in others:
                continue
            record = recorded.get(try_key(cell, seed))
            if record is None:
                result = renderer.render(cell, seed, step_callback)
                record = _add(run.dataset, cell, index, result)
                recorded[try_key(cell, seed)] = record
                image = result.image
                run.generated += 1
            else:
                image = load_image(run.dataset.image_path(record))
                run.reused += 1
            if not _scored(record, fingerprint, cell):
                scored = scorer.score(image, cell, run.dataset.image_path(record))
                store_scores(run.dataset, record, scored, fingerprint, cell)
                run.rescored += 1
            if index == 0:
                run.first_try_ids.append(record.id)
            run.all_ids.append(record.id)
            done += 1
            if on_image is not None:
                on_image(done, total, image, record)
    processes.merge(run.dataset, jobs, record_try_key, describe=lambda key: f"cell {key[0]} seed {key[2]}")
    if processes.distributed:
        recorded = {record_try_key(record): record for record in run.dataset.records}
        run.all_ids = [recorded[key].id for key in jobs]
        run.first_try_ids = run.all_ids[: len(run.cells)]


def _add(dataset: DatasetVersion, cell: Cell, index: int, result: Generated) -> ImageRecord:
    """Commit one try's image; the same pixels for two tries means the renderer ignores prompt or seed."""
    try:
        fields = {**result.fields, **try_tags(cell, index)}
        return dataset.add_image(result.image, stem=f"{cell.id}_try{index}", **fields)
    except DuplicateImageError as exc:
        raise FlenwheelError(
            f"cell {cell.id} try {index} rendered exactly the same pixels as {exc.existing.filename} "
            f"(cell {exc.existing.model_extra.get('cell')}); the renderer must depend on the prompt and seed"
        ) from None


def try_tags(cell: Cell, index: int) -> dict[str, Any]:
    """Record fields that tie an image to its cell and try (what resume and results.json read)."""
    tags: dict[str, Any] = {"cell": cell.id, "try": index, "card_kind": cell.kind, "family": "model_card",
                            "prompt_id": cell.id, "variant": index, "card_settings": vars(cell.settings)}
    tags.update({k: v for k in ("angle", "expression", "pose") if (v := getattr(cell, k)) is not None})
    return tags


def store_scores(dataset: DatasetVersion, record: ImageRecord, scored: dict[str, Any], fingerprint: str,
                  cell: Cell) -> None:
    """Write the checks, the identity score the review page shows, and what the instruments read
    (``scores["instruments"]``: face count, box, yaw, view, expression; ``face_readings.FaceReadings``)."""
    checks: dict[str, CheckResult] = scored["checks"]
    with dataset.edit() as edit:
        target = next(r for r in edit.records if r.id == record.id)
        target.scores["benchmark"] = {"fingerprint": fingerprint, "cell_checks": list(cell.checks),
                                      "checks": {name: result.to_json() for name, result in checks.items()}}
        if scored["identity"] is not None:
            target.scores["identity"] = scored["identity"]
        if scored.get("instruments") is not None:
            target.scores["instruments"] = scored["instruments"]
        record.scores = target.scores


def verdict_scope(run: BenchmarkRun, all_tries: bool = False) -> GateScope:
    """The images a reviewer judges for this run: the first tries (the headline rate) or every try."""
    ids = run.all_ids if all_tries else run.first_try_ids
    return scope_for(run.project, "benchmark", handle=DatasetHandle(run.dataset, tuple(dict.fromkeys(ids))))
