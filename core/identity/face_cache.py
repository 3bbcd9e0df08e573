"""Face encodings cached by image content, so a second run over the same references costs nothing.

The key is the image's pixel hash (``images.pixel_hash``, which is also a record's id) plus the
detection settings tag: the same picture under another file name, format or folder is found
again, and a change of detector or detection size (which moves the boxes and so the encodings)
never reuses a stale entry. One small JSON file per image and settings, written atomically, so
two processes filling the cache at once can only both write a whole, identical file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.atomic import atomic_write_json
from ..data.images import pil_to_array
from .faces import DetectionSettings, Face, detect, encode, upright_rgb

CACHE_FORMAT = 1
ENCODING_SIZE = 128


def compute_faces(image: Image.Image, settings: DetectionSettings) -> list[Face]:
    """Boxes and encodings of every face (largest first); what references and source checks need."""
    upright = upright_rgb(image)
    boxes = detect(upright, settings)
    if not boxes:
        return []
    return [
        Face(box, encoding=code)
        for box, code in zip(boxes, encode(pil_to_array(upright), boxes), strict=True)
    ]


class EncodingCache:
    """Encodings by pixel hash in ``folder`` (the project's ``cache/identity``); ``None`` disables caching."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0

    def path(self, image_id: str, settings: DetectionSettings) -> Path | None:
        return self.folder / f"{image_id}.{settings.tag}.json" if self.folder else None

    def faces(
        self, image_id: str, settings: DetectionSettings, load: Callable[[], Image.Image]
    ) -> list[Face]:
        """The cached faces of an image, or computed from ``load()`` (called only on a miss) and stored."""
        path = self.path(image_id, settings)
        cached = self._read(path) if path else None
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        faces = compute_faces(load(), settings)
        if path:
            atomic_write_json(
                path,
                {
                    "format": CACHE_FORMAT,
                    "image_id": image_id,
                    "settings": settings.tag,
                    "faces": [face.to_json(with_encoding=True) for face in faces],
                },
            )
        return faces

    @staticmethod
    def _read(path: Path) -> list[Face] | None:
        """A cache entry, or None when absent or damaged (it is then recomputed and rewritten)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CACHE_FORMAT:
                return None
            faces = []
            for item in data["faces"]:
                encoding = np.asarray(item["encoding"], dtype=np.float64)
                if encoding.shape != (ENCODING_SIZE,) or len(item["box"]) != 4:
                    return None
                faces.append(Face(tuple(int(v) for v in item["box"]), encoding=encoding))
            return faces
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
