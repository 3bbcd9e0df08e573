"""Preview images during training: the same prompts and seeds every time, so progress is comparable.

Each sample keeps its seed (``sample_seed`` + its index) across the run, and lands in
``samples/step_NNNNNN_II.png`` with its prompt and step in the PNG's metadata. FLUX samples are
square; a Qwen-Edit sample takes the bucket nearest its source image's aspect ratio.

Samples are drawn with the transformer in eval mode (LoRA dropout off, as at inference), and its
training mode is restored afterwards, so a preview shows the LoRA a user will load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..core.data.images import save_png
from .buckets import nearest_bucket, square_size

if TYPE_CHECKING:
    import torch

    from .adapter import ModelAdapter, PreparedSample
    from .config import TrainConfig


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode inside, and each submodule's own mode back afterwards (frozen parts may differ)."""
    modes = [(child, child.training) for child in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for child, training in modes:
            child.train(training)


def write_samples(adapter: ModelAdapter, samples: list[PreparedSample], buckets: list[tuple[int, int]],
                  config: TrainConfig, step: int, transformer: torch.nn.Module) -> list[str]:
    """Generate and save every prepared sample (``transformer`` in eval mode); returns the file paths."""
    with eval_mode(transformer):
        return [_write_one(adapter, prepared, index, buckets, config, step)
                for index, prepared in enumerate(samples)]


def _write_one(adapter: ModelAdapter, prepared: PreparedSample, index: int, buckets: list[tuple[int, int]],
               config: TrainConfig, step: int) -> str:
    if prepared.controls:
        size = nearest_bucket(prepared.controls[0].size, buckets)
    else:
        size = square_size(config.sample_size or config.resolution, adapter.pixel_multiple)
    image = adapter.sample(prepared, size, config.sample_seed + index)
    path = config.output_dir / "samples" / f"step_{step:06d}_{index:02d}.png"
    return str(save_png(image, path, {"prompt": prepared.spec.prompt, "step": step}))
