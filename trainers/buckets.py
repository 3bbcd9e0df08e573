"""Aspect-ratio buckets: train on portrait and landscape photos without squashing or over-cropping.

Each bucket has about ``resolution``² pixels and sides that are multiples of ``step`` (what the VAE
and the 2x2 latent packing need). An image goes to the bucket nearest its aspect ratio, is scaled
to cover it and centre-cropped, so at most a thin strip is lost. Images of one batch share a bucket.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def make_buckets(resolution: int, step: int, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """(width, height) pairs of roughly ``resolution``² pixels, square first, within ``max_ratio``."""
    area = resolution * resolution
    found = {(resolution // step * step or step,) * 2}
    width = step
    while width <= resolution * max_ratio:
        height = max(step, int(area / width) // step * step)
        if max(width / height, height / width) <= max_ratio:
            found.add((width, height))
            found.add((height, width))
        width += step
    return sorted(found, key=lambda wh: (abs(math.log(wh[0] / wh[1])), wh))


def nearest_bucket(size: tuple[int, int], buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to the image's (on a log scale, so 2:1 and 1:2 are even)."""
    ratio = math.log(size[0] / size[1])
    return min(buckets, key=lambda wh: (abs(math.log(wh[0] / wh[1]) - ratio), -wh[0] * wh[1]))


def square_size(resolution: int, step: int) -> tuple[int, int]:
    side = max(step, resolution // step * step)
    return side, side


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover ``size`` and crop the centre (no distortion, no padding)."""
    width, height = size
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def to_pixels(image: Image.Image, size: tuple[int, int]):
    """A [3, H, W] float tensor in -1..1, what both VAEs expect."""
    import torch

    array = np.asarray(fit(image, size), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
