"""Cached latents and text embeddings: encode once, then let the encoders leave the GPU.

With caching on (the default), every image is encoded by the VAE and every caption (and the empty
caption, when caption dropout is on) by the text encoders before the first step; the text encoders
are then dropped, which frees most of the memory a FLUX (T5-XXL) or Qwen-Image (Qwen2.5-VL) run
needs besides the transformer. The tensors also go to ``disk_cache`` so a resumed run reads them
back instead. With caching off, items are encoded on the fly each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from .adapter import Example, ModelAdapter, PreparedSample, Tensors
from .disk_cache import DiskCache

if TYPE_CHECKING:
    from .config import SampleSpec, TrainConfig
    from .datasets import TrainItem

#: ``progress(phase, done, total)``
PhaseFn = Callable[[str, int, int], None]


class EncodedData:
    def __init__(self, adapter: ModelAdapter, config: TrainConfig, items: list[TrainItem],
                 sizes: list[tuple[int, int]], disk: DiskCache) -> None:
        self.adapter = adapter
        self.config = config
        self.items = items
        self.sizes = sizes
        self.disk = disk
        self.images: dict[int, Tensors] = {}
        self.texts: dict[str, Tensors] = {}

    def captions(self, index: int) -> list[str]:
        caption = self.items[index].caption
        return [caption, ""] if self.config.caption_dropout > 0 else [caption]

    def text_keys(self) -> list[str]:
        """Every text embedding the cached run needs (the empty caption too, with caption dropout)."""
        keys = [self.adapter.text_key(item, caption)
                for index, item in enumerate(self.items) for caption in self.captions(index)]
        return list(dict.fromkeys(keys))

    def _image_key(self, index: int) -> str:
        width, height = self.sizes[index]
        return f"{self.items[index].id}@{width}x{height}"

    def cache(self, progress: PhaseFn = lambda name, done, total: None) -> str:
        """Encode (or read from disk) what the config says to cache; returns a line for the log.
        ``progress(phase, done, total)`` is told after every item, so a waiting user sees it move."""
        device = self.adapter.device
        if self.config.cache_latents:
            for index, item in enumerate(self.items):
                key = self._image_key(index)
                self.images[index] = self.disk.load("latents", key, device) or self.disk.save(
                    "latents", key, self.adapter.encode_images(item, self.sizes[index]))
                progress("caching latents", index + 1, len(self.items))
        if self.config.cache_text_embeddings:
            for index, item in enumerate(self.items):
                for caption in self.captions(index):
                    key = self.adapter.text_key(item, caption)
                    if key not in self.texts:
                        self.texts[key] = self.disk.load("text", key, device) or self.disk.save(
                            "text", key, self.adapter.encode_text(item, caption))
                progress("encoding captions", index + 1, len(self.items))
        return (f"cached {len(self.images)} latents and {len(self.texts)} text embeddings "
                f"({self.disk.hits} read from {self.disk.folder})")

    def prepare_samples(self, specs: list[SampleSpec]) -> list[PreparedSample]:
        """Sample prompts encoded now (or read from disk), before the text encoders leave."""
        prepared = []
        for spec in specs:
            key = self.adapter.sample_key(spec)
            text = self.disk.load("text", key, self.adapter.device)
            sample = self.adapter.prepare_sample(spec, text)
            if text is None:
                self.disk.save("text", key, sample.text)
            prepared.append(sample)
        return prepared

    def example(self, index: int, generator: torch.Generator) -> Example:
        """One batch item; caption dropout draws from the step's generator, so resume repeats it."""
        item, size, dropout = self.items[index], self.sizes[index], self.config.caption_dropout
        dropped = dropout > 0 and torch.rand(1, generator=generator).item() < dropout
        caption = "" if dropped else item.caption
        images = self.images.get(index) or self.adapter.encode_images(item, size)
        key = self.adapter.text_key(item, caption)
        text = self.texts.get(key) or self.adapter.encode_text(item, caption)
        return Example(images, text, size)
