"""One Qwen-Image-Edit-2509 edit, reproducible from its record, and the identity-gated retry loop.

``edit_once`` is the unit every stage shares: enrichment runs it for each planned edit, and the
triplet writer re-runs a failed edit through it with an improved prompt. The generator is a CPU
generator seeded per call, so a recorded seed gives the same image on any device and with any
offload setting (for the same model, precision and LoRAs).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..data.errors import FlenwheelError
from ..data.images import to_rgb8
from ..identity.gate import IdentityGate, IdentityResult
from ..models.pipelines import PipelineHandle, qwen_edit_sizes
from ..models.qwen_edit_loader import activate_loras, model_label
from .plan import EnrichSettings

MAX_REFERENCES = 2  # Qwen-Image-Edit-2509 takes up to three images: the source and two more


@dataclass
class EditResult:
    """One edited image and the record fields that reproduce it."""

    image: Image.Image
    fields: dict[str, Any]


def output_size(source: Image.Image, settings: EnrichSettings) -> tuple[int, int]:
    """Width and height of the edit: as set, else the source's aspect ratio at ``settings.pixels``."""
    ratio = source.width / source.height
    width, height = settings.width, settings.height
    if width and not height:
        height = round(width / ratio / 16) * 16
    elif height and not width:
        width = round(height * ratio / 16) * 16
    elif not (width and height):
        width = round(math.sqrt(settings.pixels * ratio) / 32) * 32
        height = round(width / ratio / 32) * 32
    return max(32, int(width)), max(32, int(height))


def derive_seed(*parts: Any) -> int:
    """A stable 32-bit seed from the run seed and what identifies the edit (order-independent)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:4], "big")


def edit_once(handle: PipelineHandle, source_image: Image.Image, prompt: str, seed: int,
              settings: EnrichSettings | None = None,
              reference_image: Image.Image | Sequence[Image.Image] | None = None) -> EditResult:
    """One Qwen-Image-Edit-2509 edit; the returned fields reproduce it exactly with the same model."""
    import torch

    settings = settings or EnrichSettings()
    single = isinstance(reference_image, Image.Image)
    references = [reference_image] if single else list(reference_image or [])
    if len(references) > MAX_REFERENCES:
        raise FlenwheelError(f"Qwen-Image-Edit-2509 takes at most {MAX_REFERENCES} reference images "
                             "besides the source")
    activate_loras(handle)
    source = to_rgb8(source_image)
    width, height = output_size(source, settings)
    guided = settings.true_cfg > 1
    start = time.monotonic()
    try:
        with qwen_edit_sizes(settings.vae_pixels, settings.condition_pixels), torch.inference_mode():
            image = handle.pipe(
                image=[source, *(to_rgb8(ref) for ref in references)], prompt=prompt,
                negative_prompt=settings.negative_prompt if guided else None,
                true_cfg_scale=settings.true_cfg,
                height=height, width=width, num_inference_steps=settings.steps,
                generator=torch.Generator("cpu").manual_seed(seed),
            ).images[0]
    except torch.cuda.OutOfMemoryError:
        raise FlenwheelError(
            f"out of GPU memory editing at {width}x{height}: load the model with offload=model or "
            "quantize=nf4, or lower the size (pixels / condition_pixels)"
        ) from None
    return EditResult(image=image, fields={
        "prompt": prompt, "negative_prompt": settings.negative_prompt if guided else None, "seed": seed,
        "model": model_label(handle), "loras": list(handle.loras), "steps": settings.steps,
        "true_cfg": settings.true_cfg, "width": image.width, "height": image.height,
        "vae_pixels": settings.vae_pixels, "condition_pixels": settings.condition_pixels,
        "seconds": round(time.monotonic() - start, 3),
    })


def gated_edit(handle: PipelineHandle, source: Image.Image, prompt: str, seed: int, settings: EnrichSettings,
               scorer: IdentityGate | None, reference: Image.Image | None = None,
               ) -> tuple[EditResult, IdentityResult | None, list[dict[str, Any]]]:
    """Edit, and while the face drifts retry with new seeds; the closest attempt wins when none match."""
    attempts: list[tuple[EditResult, IdentityResult | None]] = []
    for attempt in range(1 + (settings.max_retries if scorer is not None else 0)):
        attempt_seed = seed if attempt == 0 else derive_seed(seed, "retry", attempt)
        result = edit_once(handle, source, prompt, attempt_seed, settings, reference)
        score = scorer.score(result.image) if scorer is not None else None
        attempts.append((result, score))
        if score is None or score.match:
            break
    best, score = min(attempts, key=_closeness)
    history = [{"seed": r.fields["seed"], "seconds": r.fields["seconds"],
                "distance": s.distance if s else None, "match": s.match if s else None} for r, s in attempts]
    return best, score, history


def _closeness(attempt: tuple[EditResult, IdentityResult | None]) -> tuple[bool, float]:
    """Sort key: matches first, then smaller face distance (no face counts as infinitely far)."""
    score = attempt[1]
    if score is None:
        return (False, 0.0)
    return (not score.match, score.distance if score.distance is not None else math.inf)
