"""Cached latents and text embeddings: encode once, then let the encoders leave the GPU.

With caching on (the default), every image is encoded by the VAE and every caption (and the empty
caption, when caption dropout is on) by the text encoders before the first step; the text encoders
are then dropped, which frees most of the memory a FLUX (T5-XXL) or Qwen-Image (Qwen2.5-VL) run
needs besides the transformer. With caching off, items are encoded on the fly each step.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

import torch

from .adapter import Example, ModelAdapter, Tensors

if TYPE_CHECKING:
    from .config import TrainConfig
    from .datasets import TrainItem


class EncodedData:
    def __init__(
        self, adapter: ModelAdapter, config: TrainConfig, items: list[TrainItem], sizes: list[tuple[int, int]]
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.items = items
        self.sizes = sizes
        self.images: dict[int, Tensors] = {}
        self.texts: dict[Hashable, Tensors] = {}

    def captions(self, index: int) -> list[str]:
        caption = self.items[index].caption
        return [caption, ""] if self.config.caption_dropout > 0 else [caption]

    def cache(self) -> str:
        """Encode what the config says to cache; returns a line for the log."""
        if self.config.cache_latents:
            self.images = {
                i: self.adapter.encode_images(item, self.sizes[i]) for i, item in enumerate(self.items)
            }
        if self.config.cache_text_embeddings:
            for index, item in enumerate(self.items):
                for caption in self.captions(index):
                    key = self.adapter.text_key(item, caption)
                    if key not in self.texts:
                        self.texts[key] = self.adapter.encode_text(item, caption)
        return f"cached {len(self.images)} latents and {len(self.texts)} text embeddings"

    def example(self, index: int, generator: torch.Generator) -> Example:
        """One batch item; caption dropout draws from the step's generator, so resume repeats it."""
        item, size, dropout = self.items[index], self.sizes[index], self.config.caption_dropout
        dropped = dropout > 0 and torch.rand(1, generator=generator).item() < dropout
        caption = "" if dropped else item.caption
        images = self.images.get(index) or self.adapter.encode_images(item, size)
        key = self.adapter.text_key(item, caption)
        text = self.texts.get(key) or self.adapter.encode_text(item, caption)
        return Example(images, text, size)
