"""Preview images during training: the same prompts and seeds every time, so progress is comparable.

Each sample keeps its seed (``sample_seed`` + its index) across the run, and lands in
``samples/step_NNNNNN_II.png`` with its prompt and step in the PNG's metadata. FLUX samples are
square; a Qwen-Edit sample takes the bucket nearest its source image's aspect ratio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.data.images import save_png
from .buckets import nearest_bucket, square_size

if TYPE_CHECKING:
    from .adapter import ModelAdapter, PreparedSample
    from .config import TrainConfig


def write_samples(adapter: ModelAdapter, samples: list[PreparedSample], buckets: list[tuple[int, int]],
                  config: TrainConfig, step: int) -> list[str]:
    """Generate and save every prepared sample; returns the file paths."""
    paths = []
    for index, prepared in enumerate(samples):
        if prepared.controls:
            size = nearest_bucket(prepared.controls[0].size, buckets)
        else:
            size = square_size(config.sample_size or config.resolution, adapter.pixel_multiple)
        image = adapter.sample(prepared, size, config.sample_seed + index)
        path = config.output_dir / "samples" / f"step_{step:06d}_{index:02d}.png"
        paths.append(str(save_png(image, path, {"prompt": prepared.spec.prompt, "step": step})))
    return paths
