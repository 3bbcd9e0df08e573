"""Dataset handles: what one node hands the next through a FLENWHEEL_DATASET socket.

A handle names a dataset version and, optionally, a subset of its records (e.g. the images an
identity filter passed). It holds no pixels, so it is cheap for ComfyUI to cache, and it always
reads the records fresh from disk, so a review decision made after the handle was created is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .dataset import DatasetVersion
from .images import load_image
from .records import ImageRecord


@dataclass(frozen=True)
class DatasetHandle:
    dataset: DatasetVersion
    ids: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        return self.dataset.label

    def records(self) -> list[ImageRecord]:
        """Records in dataset order, limited to ``ids`` when the handle is a subset."""
        records = self.dataset.records
        if self.ids is None:
            return records
        wanted = set(self.ids)
        return [record for record in records if record.id in wanted]

    def paths(self) -> list[Path]:
        return [self.dataset.image_path(record) for record in self.records()]

    def load_images(self) -> list[Image.Image]:
        return [load_image(path) for path in self.paths()]

    def subset(self, ids: Sequence[str]) -> DatasetHandle:
        return DatasetHandle(self.dataset, tuple(ids))

    def __len__(self) -> int:
        return len(self.records())

    def describe(self) -> str:
        count = len(self)
        scope = "all" if self.ids is None else "subset"
        return f"{self.label}: {count} images ({scope})"
