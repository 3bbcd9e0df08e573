"""Step 1.5: synthetic images of the character from FLUX + its LoRA, into ``data/synthetic/vN/``.

``generate_one`` renders one image and returns it with the fields its record needs; the model
card benchmark calls it directly. ``generate_batch`` renders several images that share their
settings in one pipeline call, and ``run_generation`` drives a whole plan (prompts x variants)
into a dataset version.

Each image is committed to the dataset, in its own transaction, before progress is reported.
Progress callbacks are ComfyUI's interrupt points, so an interrupt never loses a finished image,
and a rerun skips every planned image whose prompt, seed, settings, model and LoRAs are already
recorded. The latest synthetic version is resumed when it was made with the same model and
LoRAs; otherwise a new version starts.

Seeds drive CPU generators, so a seed gives the same starting noise on any device, and the same
image bit for bit on the same machine and batch size (batching changes the lowest bits).
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.distributed import Processes
from ..data.errors import DatasetError, ModelLoadError
from ..data.project import Project
from ..data.records import ImageRecord, LoraRef
from ..models.character_lora import lora_version_of
from ..models.loras import set_loras
from ..models.pipelines import PipelineHandle, prompt_kwargs
from .prompt_sets import PlannedImage, RenderSettings
from .synthetic_report import GenerationReport, check_synthetic

STAGE = "synthetic"
#: True CFG scale used when a caller gives a negative prompt without one.
DEFAULT_TRUE_CFG = 1.5

StepCallback = Callable[[int, int], None]
ImageCallback = Callable[[int, int, Image.Image, ImageRecord], None]


@dataclass
class Generated:
    """One rendered image and the record fields that describe how it was made."""

    image: Image.Image
    fields: dict[str, Any]


def model_label(handle: PipelineHandle) -> str:
    """What records cite as the base model: the single transformer file, else the folder or hub id."""
    transformer = (handle.options.get("files") or {}).get("transformer")
    return Path(transformer).name if transformer else handle.source


def active_loras(handle: PipelineHandle) -> list[LoraRef]:
    """Make the handle's LoRAs (and only those) active on its pipeline; cheap when nothing changes."""
    return set_loras(handle, list(handle.lora_specs))


def _check_size(handle: PipelineHandle, settings: RenderSettings) -> None:
    multiple = int(getattr(handle.pipe, "vae_scale_factor", 8)) * 2
    if settings.width % multiple or settings.height % multiple:
        raise ModelLoadError(
            f"width and height must be multiples of {multiple} for this model, "
            f"not {settings.width}x{settings.height}"
        )


def applied_settings(handle: PipelineHandle, settings: RenderSettings) -> RenderSettings:
    """``settings`` as the pipeline will apply them, so a record never cites a CFG setting that did nothing.

    A pipeline with true CFG (a ``true_cfg_scale`` argument: FLUX.1, Qwen-Image) applies the negative
    prompt only when ``true_cfg`` > 1. A pipeline whose own CFG takes the negative text (a
    ``negative_prompt`` argument without true CFG: Z-Image) contrasts with it at ``guidance`` > 0. A
    pipeline whose own CFG takes only an embedding (``negative_prompt_embeds``: FLUX.2 [klein] base
    checkpoints) contrasts at ``guidance`` > 1 unless it is step-distilled. In the last two,
    ``true_cfg`` is no setting of the pipeline at all, so it is reset to 1.
    """
    parameters = inspect.signature(handle.pipe.__call__).parameters
    negative = settings.negative_prompt
    if "true_cfg_scale" in parameters:
        used = bool(negative) and settings.true_cfg > 1.0
        return dataclasses.replace(settings, negative_prompt=negative if used else None,
                                   true_cfg=settings.true_cfg if used else 1.0)
    if "negative_prompt" in parameters:
        used = bool(negative) and settings.guidance > 0.0
    elif "negative_prompt_embeds" in parameters:
        distilled = bool(getattr(getattr(handle.pipe, "config", None), "is_distilled", False))
        used = bool(negative) and settings.guidance > 1.0 and not distilled
    else:
        if negative and settings.true_cfg > 1.0:
            raise ModelLoadError(f"the {handle.kind} model takes no negative prompt; remove negative_prompt / true_cfg")
        used = False
    return dataclasses.replace(settings, negative_prompt=negative if used else None, true_cfg=1.0)


def _negative_prompt(handle: PipelineHandle, settings: RenderSettings, count: int) -> dict[str, Any]:
    """The pipeline's arguments for the negative prompt of ``applied_settings``.

    FLUX.1 takes the text and runs true CFG at ``true_cfg``. Z-Image takes the text as the other side
    of its own CFG. FLUX.2 [klein] has no negative-prompt text: its own CFG contrasts with an empty
    prompt's embedding, so the negative prompt is encoded and given as that embedding instead.
    """
    parameters = inspect.signature(handle.pipe.__call__).parameters
    negatives = [settings.negative_prompt] * count
    if "true_cfg_scale" in parameters:
        return {"negative_prompt": negatives, "true_cfg_scale": settings.true_cfg}
    if "negative_prompt" in parameters:
        return {"negative_prompt": negatives}
    embeds = handle.pipe.encode_prompt(prompt=negatives, device=handle.pipe._execution_device)[0]
    return {"negative_prompt_embeds": embeds}


def _fields(
    handle: PipelineHandle,
    refs: list[LoraRef],
    prompt: str,
    seed: int,
    settings: RenderSettings,
    seconds: float,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "prompt": prompt,
        "seed": seed,
        "model": model_label(handle),
        "loras": [ref.model_dump() for ref in refs],
        "lora_version": next((v for ref in refs if (v := lora_version_of(ref.path))), None),
        "steps": settings.steps,
        "guidance": settings.guidance,
        "width": settings.width,
        "height": settings.height,
        "seconds": round(seconds, 3),
    }
    if settings.negative_prompt:
        fields["negative_prompt"] = settings.negative_prompt
    if settings.true_cfg > 1.0:
        fields["true_cfg"] = settings.true_cfg
    return fields


def generate_batch(
    handle: PipelineHandle,
    prompts: Sequence[str],
    seeds: Sequence[int],
    settings: RenderSettings,
    step_callback: StepCallback | None = None,
) -> list[Generated]:
    """Render ``prompts[i]`` with ``seeds[i]`` in one pipeline call, all with ``settings``."""
    import torch

    if len(prompts) != len(seeds) or not prompts:
        raise ValueError("generate_batch needs one seed per prompt, and at least one prompt")
    _check_size(handle, settings)
    settings = applied_settings(handle, settings)
    refs = active_loras(handle)
    kwargs: dict[str, Any] = {
        **prompt_kwargs(handle.pipe, list(prompts)),
        "height": settings.height,
        "width": settings.width,
        "num_inference_steps": settings.steps,
        "guidance_scale": settings.guidance,
        "generator": [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds],
    }
    if settings.negative_prompt:
        kwargs.update(_negative_prompt(handle, settings, len(prompts)))
    if step_callback is not None:

        def on_step(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            step_callback(index + 1, settings.steps)
            return tensors

        kwargs["callback_on_step_end"] = on_step
    start = time.perf_counter()
    images = handle.pipe(**kwargs).images
    seconds = (time.perf_counter() - start) / len(prompts)
    return [
        Generated(image, _fields(handle, refs, prompt, int(seed), settings, seconds))
        for image, prompt, seed in zip(images, prompts, seeds, strict=True)
    ]


def generate_one(
    handle: PipelineHandle,
    prompt: str,
    seed: int,
    width: int = 1024,
    height: int = 1024,
    steps: int = 28,
    guidance: float = 3.5,
    negative_prompt: str | None = None,
    true_cfg: float | None = None,
    step_callback: StepCallback | None = None,
) -> Generated:
    """One image with the handle's LoRAs; ``fields`` go straight into ``dataset.add_image(image, **fields)``.

    A negative prompt needs true CFG to act; without ``true_cfg`` it uses ``DEFAULT_TRUE_CFG``.
    """
    cfg = true_cfg if true_cfg is not None else (DEFAULT_TRUE_CFG if negative_prompt else 1.0)
    settings = RenderSettings(
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        true_cfg=cfg,
        negative_prompt=negative_prompt or None,
    )
    return generate_batch(handle, [prompt], [seed], settings, step_callback)[0]


def record_key(fields: dict[str, Any] | ImageRecord) -> tuple[Any, ...]:
    """What makes two images the same request: prompt, seed, settings, model and LoRAs."""
    data = fields.model_dump() if isinstance(fields, ImageRecord) else fields
    loras = tuple((lora.get("sha256"), float(lora.get("strength", 1.0))) for lora in data.get("loras") or [])
    return (
        data.get("prompt"),
        data.get("seed"),
        data.get("width"),
        data.get("height"),
        data.get("steps"),
        data.get("guidance"),
        data.get("true_cfg") or 1.0,
        data.get("negative_prompt") or None,
        data.get("model"),
        loras,
    )


def planned_key(item: PlannedImage, handle: PipelineHandle, refs: list[LoraRef]) -> tuple[Any, ...]:
    """The ``record_key`` the planned image's record will have once the handle's pipeline generates it."""
    s = applied_settings(handle, item.settings)
    loras = tuple((ref.sha256, float(ref.strength)) for ref in refs)
    return (
        item.prompt,
        item.seed,
        s.width,
        s.height,
        s.steps,
        s.guidance,
        s.true_cfg,
        s.negative_prompt,
        model_label(handle),
        loras,
    )


def _signature(model: str, refs: list[LoraRef]) -> dict[str, Any]:
    return {"model": model, "loras": [{"sha256": r.sha256, "strength": float(r.strength)} for r in refs]}


def open_version(
    project: Project,
    signature: dict[str, Any],
    info: dict[str, Any],
    version: str | None,
    new_version: bool,
    planned: set[tuple[Any, ...]],
) -> tuple[DatasetVersion, bool]:
    """The version to write to, and whether it already existed (a resume).

    A named version must have been made with the same model and LoRAs. Otherwise the latest version
    is reused when it matches and is open (or finished with every planned image in it).
    """
    existing = project.versions(STAGE)
    if version and version in existing:
        dataset = project.dataset(STAGE, version)
        if dataset.load().info.get("signature") != signature:
            raise DatasetError(
                f"{dataset.label} was generated with another model or other LoRAs/strengths; "
                "use a new version (leave the version empty)"
            )
        return dataset, True
    if version:
        return project.create_dataset(STAGE, version, info=info), False
    if existing and not new_version:
        dataset = DatasetVersion(project, STAGE, existing[-1])
        metadata = dataset.load() if dataset.exists() else None
        if metadata is not None and metadata.info.get("signature") == signature:
            complete = planned <= {record_key(r) for r in metadata.images}
            if metadata.status != "finished" or complete:
                return dataset, True
    return project.create_dataset(STAGE, info=info), False


def _opened(opened: tuple[DatasetVersion, bool]) -> tuple[str, bool]:
    """A version as every process can open it: its name, and whether it was a resume."""
    return opened[0].version, opened[1]


def _describe_key(key: tuple[Any, ...]) -> str:
    """A missing image as a user can find it in the plan (``flenwheel generate --dry-run``)."""
    return f"'{key[0]}' seed {key[1]}"


def _batches(items: list[PlannedImage], size: int) -> list[list[PlannedImage]]:
    """Consecutive runs of equal settings, at most ``size`` long (one pipeline call each)."""
    batches: list[list[PlannedImage]] = []
    for item in items:
        if batches and len(batches[-1]) < size and batches[-1][0].settings == item.settings:
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


def _render(
    handle: PipelineHandle, batch: list[PlannedImage], step_callback: StepCallback | None
) -> list[Generated] | None:
    """Render a batch, or None when a batch of several ran out of GPU memory (the caller shrinks it)."""
    import torch

    try:
        return generate_batch(
            handle, [b.prompt for b in batch], [b.seed for b in batch], batch[0].settings, step_callback
        )
    except torch.cuda.OutOfMemoryError:
        if len(batch) == 1:
            raise
        torch.cuda.empty_cache()
        return None


def _commit(
    dataset: DatasetVersion,
    report: GenerationReport,
    item: PlannedImage,
    result: Generated,
    total: int,
    on_image: ImageCallback | None,
) -> bool:
    """Save one image in its own transaction, then report it (a report may be an interrupt).

    Returns False for a duplicate, which is reported and not added.
    """
    fields = {**result.fields, **item.tags()}
    try:
        record = dataset.add_image(
            result.image, stem=f"{item.family}_{item.prompt_id}_v{item.variant:02d}", **fields
        )
    except DuplicateImageError as exc:
        report.duplicates.append(f"{item.prompt_id} variant {item.variant} (seed {item.seed}): {exc}")
        return False
    report.generated.append(record)
    if on_image is not None:
        on_image(len(report.generated), total, result.image, record)
    return True


def run_generation(
    project: Project,
    handle: PipelineHandle,
    plan: list[PlannedImage],
    *,
    version: str | None = None,
    new_version: bool = False,
    batch_size: int = 1,
    finish: bool = False,
    on_image: ImageCallback | None = None,
    step_callback: StepCallback | None = None,
    info: dict[str, Any] | None = None,
) -> GenerationReport:
    """Generate every planned image not already in the version, committing each before reporting it.

    Under a launcher (torchrun, accelerate launch) each process renders its share of the images
    still to do, and the main process merges them into the one version (``data.distributed``).
    """
    if not plan:
        raise DatasetError("nothing to generate: the plan is empty (check the families and prompt ids)")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    start = time.perf_counter()
    refs = active_loras(handle)
    model = model_label(handle)
    signature = _signature(model, refs)
    keys = [planned_key(item, handle, refs) for item in plan]
    version_info = {
        "engine": "flenwheel generate",
        "signature": signature,
        "model": model,
        "source": handle.source,
        "load_options": handle.options,
        "loras": [ref.model_dump() for ref in refs],
        "lora_version": next((v for ref in refs if (v := lora_version_of(ref.path))), None),
        **(info or {}),
    }
    processes = Processes.current()
    processes.agree("generation settings", [signature, keys, info, version, new_version, batch_size])
    label, resumed = processes.on_main(
        lambda: _opened(open_version(project, signature, version_info, version, new_version, set(keys)))
    )
    dataset = DatasetVersion(project, STAGE, label)
    done = {record_key(record) for record in dataset.records}
    todo = [item for item, key in zip(plan, keys, strict=True) if key not in done]
    processes.agree("list of images still to make", [planned_key(item, handle, refs) for item in todo])
    if todo and dataset.finished:
        raise dataset.finished_error()
    todo_count, todo = len(todo), processes.split(todo)
    report = GenerationReport(
        dataset=dataset, planned=len(plan), skipped=len(plan) - todo_count, resumed=resumed
    )
    size, pending, duplicates = batch_size, list(todo), []
    while pending:
        batch = _batches(pending, size)[0]
        results = _render(handle, batch, step_callback)
        if results is None:
            size = len(batch) // 2
            continue
        pending = pending[len(batch) :]
        for item, result in zip(batch, results, strict=True):
            if not _commit(dataset, report, item, result, len(todo), on_image):
                duplicates.append(planned_key(item, handle, refs))
    processes.merge(dataset, keys, record_key, duplicates, describe=_describe_key)
    records = dataset.records
    by_key = {record_key(record): record for record in records}
    report.records = [by_key[key] for key in keys if key in by_key]
    if finish and processes.is_main and len(report.records) == len(plan) and not dataset.finished:
        dataset.finish()
    processes.wait()
    report.criteria = check_synthetic(records)
    report.seconds = time.perf_counter() - start
    return report
