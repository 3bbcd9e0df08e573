"""The improved-prompt path to a corrected target: re-run a failed edit until a reviewer accepts one.

A re-run repeats the edit exactly as recorded (same source, reference, size, steps, CFG) with a
revised prompt and new seeds, through ``qwen_edit.edit_once``. The candidates go into
``data/reruns/vN`` (vN = the enriched version they correct), each linked to its source and to the
failed edit, and are reviewed in the ``rerun`` review (the review page, a ReviewGate, or
``flenwheel triplets accept``). The accepted one becomes the target of the triplet.

The training caption stays the original prompt, because that is the instruction the editor
should learn to follow better; ``train_on="improved"`` keeps the revised prompt instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Literal

from PIL import Image

from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.images import load_image
from ..data.project import Project
from ..data.records import ImageRecord
from ..enrich.plan import EnrichSettings
from ..enrich.qwen_edit import derive_seed, edit_once
from ..identity.gate import IdentityGate
from ..models.pipelines import PipelineHandle
from ..review.placement import place
from ..review.store import ReviewStore
from .correction_targets import NEEDS_CORRECTION, CorrectionError, find_record, origin, source_file

LOG = logging.getLogger("flenwheel.triplets")
STAGE = "reruns"
TrainOn = Literal["original", "improved"]
TRAIN_ON = ("original", "improved")

#: What each preset reason adds to the prompt when no revised prompt is given.
REASON_HINTS = {
    "identity_drift": ("The face must stay exactly the person in Picture 1: same face shape, eyes, nose, "
                       "mouth, skin tone and hair."),
    "artifacts": "Clean, natural result with no artifacts, smears, distortions or duplicated features.",
    "insufficient_change": "Make the requested change clearly and fully visible in the whole image.",
    "wrong_edit_or_anatomy": ("Do exactly the requested edit and nothing else; keep natural anatomy with "
                              "correct hands, limbs and proportions."),
}


def improve_prompt(original: str, reason: str | None, revised: str | None = None) -> str:
    """The prompt to re-run with: ``revised`` (``{prompt}`` in it stands for the original), else the
    original plus what the reviewer's reason asks for."""
    if revised and revised.strip():
        return revised.replace("{prompt}", original).strip()
    hint = REASON_HINTS.get(reason or "")
    return f"{original.strip()} {hint}" if hint else original.strip()


def _rerun_version(project: Project, enriched: DatasetVersion) -> DatasetVersion:
    dataset = DatasetVersion(project, STAGE, enriched.version)
    if dataset.exists():
        return dataset
    return project.create_dataset(STAGE, enriched.version, info={"enriched_dataset": enriched.label})


def rerun_settings(record: ImageRecord, overrides: dict[str, Any] | None = None) -> EnrichSettings:
    """The failed edit's own settings (size, steps, CFG, input areas), with ``overrides`` applied."""
    extra = record.model_extra or {}
    settings = EnrichSettings(
        steps=int(extra.get("steps") or 40), true_cfg=float(extra.get("true_cfg") or 4.0),
        negative_prompt=extra.get("negative_prompt") or " ", width=record.width, height=record.height,
        vae_pixels=extra.get("vae_pixels"), condition_pixels=extra.get("condition_pixels"),
    )
    settings = replace(settings, **{k: v for k, v in (overrides or {}).items() if v is not None})
    settings.validate()
    return settings


def _reference(project: Project, record: ImageRecord, given: Image.Image | None,
               log: Callable[[str], None]) -> tuple[Image.Image | None, str | None]:
    """The failed edit's second picture: another source (``parents[1]``) or the one passed in."""
    if given is not None:
        return given, None
    if len(record.parents) > 1:
        proxy = record.model_copy(update={"parents": record.parents[1:]})
        reference, path = source_file(project, proxy)
        return load_image(path), reference.id
    if (record.model_extra or {}).get("reference_file"):
        log(f"{record.filename} was made with an outside reference image that the project does not keep; "
            "re-running without it (pass the same picture as the reference to keep the conditions)")
    return None, None


@dataclass
class RerunResult:
    dataset: DatasetVersion
    failed: ImageRecord
    prompt: str
    added: list[tuple[ImageRecord, Image.Image]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def rerun_correction(project: Project, handle: PipelineHandle, version: str, image: str,
                     prompt: str | None = None, seeds: int | Sequence[int] = 3, train_on: TrainOn = "original",
                     overrides: dict[str, Any] | None = None, scorer: IdentityGate | None = None,
                     reference_image: Image.Image | None = None,
                     log: Callable[[str], None] = LOG.info) -> RerunResult:
    """Re-run one needs_correction edit of ``enriched/version`` with an improved prompt and new seeds.

    ``image`` is the edit's id, id prefix or file name; ``seeds`` a count of new seeds (derived
    from the edit's seed, different on every call) or explicit seeds.
    """
    if train_on not in TRAIN_ON:
        raise CorrectionError(f"train_on must be original or improved, not '{train_on}'")
    enriched = project.dataset("enriched", version)
    failed = find_record(enriched, image)
    decision = ReviewStore(project).current_for("enriched", version, failed.id)
    if decision is None or decision.label != NEEDS_CORRECTION:
        state = decision.label if decision else "not reviewed yet"
        raise CorrectionError(f"{failed.filename} is {state}; only edits reviewed as needs_correction are re-run")
    original = failed.prompt or ""
    if not original.strip():
        raise CorrectionError(f"{failed.filename} has no recorded prompt, so there is nothing to re-run")
    text = improve_prompt(original, decision.reason, prompt)
    settings = rerun_settings(failed, overrides)
    source, source_path = source_file(project, failed)
    reference, reference_id = _reference(project, failed, reference_image, log)
    dataset = _rerun_version(project, enriched)
    done = sum(1 for r in dataset.records if (r.model_extra or {}).get("corrects") == failed.id)
    seed_list = list(seeds) if not isinstance(seeds, int) else [
        derive_seed(failed.seed or 0, "rerun", index) for index in range(done, done + max(1, seeds))]
    result = RerunResult(dataset, failed, text)
    picture = load_image(source_path)
    for seed in seed_list:
        made = edit_once(handle, picture, text, seed, settings, reference)
        fields = dict(made.fields)
        fields.update(
            parents=[source.id, failed.id] + ([reference_id] if reference_id else []), corrects=failed.id,
            enriched_dataset=enriched.label, original_prompt=original, train_on=train_on,
            issue=decision.reason, caption=failed.caption, family=(failed.model_extra or {}).get("family"),
            value=(failed.model_extra or {}).get("value"), angle=failed.angle, expression=failed.expression,
        )
        if scorer is not None:
            fields["scores"] = {"identity": scorer.score(made.image).to_json()}
        stem = f"{PurePosixPath(origin(failed)).stem}_rerun_{seed}"
        try:
            record = dataset.add_image(made.image, stem=stem, **fields)
        except DuplicateImageError as exc:
            result.skipped.append(str(exc))
            continue
        result.added.append((record, made.image))
        log(f"{record.filename}: seed {seed}, {made.fields['seconds']:.1f} s")
    return result


def review_rerun(project: Project, version: str, candidate: str, accept: bool = True,
                 reviewer: str | None = None, note: str | None = None) -> ImageRecord:
    """Accept (or reject) a re-run as the corrected target, as the review page would, and place it."""
    dataset = DatasetVersion(project, STAGE, version)
    if not dataset.exists():
        raise CorrectionError(f"there are no re-runs for enriched/{version} yet; make some with "
                              f"flenwheel triplets rerun")
    record = find_record(dataset, candidate)
    ReviewStore(project).decide(record.id, "rerun", version, "accept" if accept else "reject",
                                reviewer=reviewer, note=note)
    place(project, "rerun", version)
    return dataset.record(record.id)

