"""Step 1.2, enrichment: each source photo edited 3-5 ways by Qwen-Image-Edit-2509, the person kept.

``enrich`` plans the edits of a whole source set (``enrich_plan``), makes each one through
``qwen_edit.edit_once`` behind the optional identity gate, and writes it into
``data/enriched/vN/`` the moment it is made, with a record that links it to its source.

The gate regenerates a drifted edit with new seeds up to ``max_retries`` times, then keeps the
closest attempt marked ``drifted``: those are exactly what the editor LoRA (Flywheel 2) learns
from, so they are never dropped. A rerun with the same settings resumes the same version and
skips what is on disk, so an interruption loses at most the image in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.distributed import Processes
from ..data.errors import FlenwheelError
from ..data.handles import DatasetHandle
from ..data.images import load_image
from ..data.records import ImageRecord
from ..identity.gate import IdentityGate, IdentityResult
from ..models.pipelines import PipelineHandle
from .edit_prompts import PlannedEdit
from .plan import (
    STAGE,
    EnrichPlan,
    EnrichSettings,
    done_edits,
    make_plan,
    planned_fields,
    target_version,
    version_info,
)
from .qwen_edit import EditResult, derive_seed, edit_once, gated_edit
from .summary import EnrichSummary, summarize

if TYPE_CHECKING:
    from ..data.project import Project

__all__ = ["EnrichResult", "EnrichSettings", "EditResult", "edit_once", "enrich", "make_plan"]

LOG = logging.getLogger("flenwheel.enrich")
ProgressFn = Callable[[int, int, "Image.Image | None"], None]


@dataclass
class EnrichResult:
    dataset: DatasetVersion
    summary: EnrichSummary
    planned: int
    added: list[ImageRecord] = field(default_factory=list)
    resumed: int = 0
    stopped: bool = False


def _record_fields(project: Project, plan: EnrichPlan, edit: PlannedEdit, result: EditResult,
                   score: IdentityResult | None, history: list[dict[str, Any]],
                   reference: ImageRecord | None, reference_label: str | None) -> dict[str, Any]:
    fields = dict(result.fields)
    fields.update(planned_fields(project, plan, edit))
    if reference is not None:
        fields["parents"] = [*fields["parents"], reference.id]
    fields.update(
        drifted=bool(score is not None and not score.match), attempts=len(history),
        seconds_total=round(sum(attempt["seconds"] for attempt in history), 3),
        reference_file=reference_label,
    )
    if score is not None:
        fields["scores"] = {"identity": score.to_json()}
        fields["identity_attempts"] = history
    return fields


def enrich(project: Project, handle: PipelineHandle, settings: EnrichSettings | None = None,
           scorer: IdentityGate | None = None, source: DatasetHandle | None = None,
           reference_image: Image.Image | None = None, version: str | None = None, new_version: bool = False,
           on_progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
           log: Callable[[str], None] = LOG.info) -> EnrichResult:
    """Run (or resume) the enrichment of a source set; see the module docstring.

    ``reference_image`` is one extra view used for every source (settings.reference "image");
    with settings.reference "other_source" each source gets another source as its second view.
    ``on_progress(done, total, image)`` is called after each image is safely on disk, so a
    callback that raises (ComfyUI's interrupt) never loses finished work; ``should_stop`` is
    polled before each edit. Under a launcher (torchrun, accelerate launch) each process makes its
    share of the edits still to do and the main process merges them (``data.distributed``).
    """
    settings = settings or EnrichSettings()
    if reference_image is not None and settings.reference == "none":
        settings = replace(settings, reference="image")
    if settings.reference == "image" and reference_image is None:
        raise FlenwheelError("reference is 'image' but no reference image was given")
    plan = make_plan(project, settings, source, [ref["path"] for ref in handle.loras], log)
    info = version_info(plan, handle, settings, scorer, reference_image)
    processes = Processes.current()
    processes.agree("enrichment settings", [info["settings_key"], [plan.key(e) for e in plan.edits], version,
                                             new_version])
    label = processes.on_main(lambda: target_version(project, info, version, new_version).version)
    dataset = DatasetVersion(project, STAGE, label)
    done = done_edits(dataset)
    result = EnrichResult(dataset=dataset, summary=summarize(dataset.label, [], len(plan.records)),
                          planned=len(plan.edits))
    result.resumed = sum(1 for edit in plan.edits if plan.key(edit) in done)
    if result.resumed:
        log(f"resuming {dataset.label}: {result.resumed} of {len(plan.edits)} edits already done")
    todo = [edit for edit in plan.edits if plan.key(edit) not in done]
    processes.agree("list of edits still to make", [plan.key(edit) for edit in todo])
    progress = on_progress or (lambda done_, total, image=None: None)
    progress(result.resumed, len(plan.edits), None)
    finished, duplicates = result.resumed, []
    for edit in processes.split(todo):
        if should_stop is not None and should_stop():
            result.stopped = True
            log(f"stopped: {finished} of {len(plan.edits)} edits are on disk; run again to resume")
            break
        added = _run_edit(project, plan, edit, handle, settings, scorer, dataset, reference_image, log)
        finished += 1
        if added is not None:
            result.added.append(added[0])
        else:
            duplicates.append(plan.key(edit))
        progress(finished, len(plan.edits), added[1] if added else None)
    finished = result.resumed + sum(processes.gather(finished - result.resumed))
    result.stopped = any(processes.gather(result.stopped))
    if not result.stopped:
        processes.merge(dataset, [plan.key(edit) for edit in plan.edits],
                        lambda record: (record.model_extra or {}).get("edit_key"), duplicates,
                        describe=lambda key: _describe_edit(plan, key))
    result.summary = summarize(dataset.label, dataset.records, len(plan.records))
    if processes.is_main:
        dataset.update_info(last_run={"finished": finished, "planned": len(plan.edits),
                                      "stopped": result.stopped, "summary": result.summary.to_json()})
    processes.wait()
    return result


def _describe_edit(plan: EnrichPlan, key: str) -> str:
    """A missing edit as a user finds it in ``flenwheel enrich --dry-run``: source file and edit."""
    edit = next(edit for edit in plan.edits if plan.key(edit) == key)
    return f"{plan.records[edit.source_index].filename} {edit.family}={edit.value}"


def _run_edit(project: Project, plan: EnrichPlan, edit: PlannedEdit, handle: PipelineHandle,
              settings: EnrichSettings, scorer: IdentityGate | None, dataset: DatasetVersion,
              reference_image: Image.Image | None, log: Callable[[str], None],
              ) -> tuple[ImageRecord, Image.Image] | None:
    """Make one planned edit and commit it; returns its record and image (None for a duplicate)."""
    record = plan.records[edit.source_index]
    reference_record = plan.reference_for(edit.source_index) if settings.reference == "other_source" else None
    reference = reference_image
    label = "reference image" if reference_image is not None else None
    if reference_record is not None:
        reference = load_image(plan.source.dataset.image_path(reference_record))
        label = reference_record.filename
    prompt = plan.templates.prompt(edit.family, edit.value, with_reference=reference is not None)
    seed = derive_seed(settings.seed, record.id, edit.slot)
    source_image = load_image(plan.source.dataset.image_path(record))
    result, score, history = gated_edit(handle, source_image, prompt, seed, settings, scorer, reference)
    fields = _record_fields(project, plan, edit, result, score, history, reference_record, label)
    stem = f"{Path(record.filename).stem}_{edit.slot}_{edit.family}_{edit.value}"
    try:
        added = dataset.add_image(result.image, stem=stem, **fields)
    except DuplicateImageError as exc:
        log(f"skipped {stem}: {exc}")
        return None
    verdict = "" if score is None else (
        f", identity {'kept' if score.match else 'DRIFTED'}"
        f"{f' ({score.distance:.2f})' if score.distance is not None else ''} after {len(history)} attempt(s)")
    log(f"[{edit.plan_index + 1}/{len(plan.edits)}] {added.filename}: {edit.family}={edit.value}, "
        f"seed {result.fields['seed']}, {result.fields['seconds']:.1f} s{verdict}")
    return added, result.image
