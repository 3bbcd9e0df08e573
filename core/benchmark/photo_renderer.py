"""Real photos in place of generated images, for validating the model card's checks.

The card's automatic checks (identity, one face, head angle, sharpness...) can only be trusted once
they give the right answer on pictures whose truth is known. ``PhotoRenderer`` feeds chosen photos
through the very same benchmark engine that scores generated images: the tests use it on the shared
face photos, the README's example card is drawn with it, and a user can calibrate the limits on
their own photos the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image, ImageOps

from ..generate.generate import Generated
from .model_card import Cell


class PhotoRenderer:
    """``choose(cell)`` names the photo for a cell; it is fitted into a ``side``-pixel square.

    The margin grows by 2 px per call, so no two tries have the same pixels (the engine refuses a
    renderer whose output ignores prompt and seed).
    """

    def __init__(self, name: str, choose: Callable[[Cell], Image.Image], side: int = 1024) -> None:
        self.name, self.choose, self.side = name, choose, side
        self.calls = 0

    def signature(self) -> dict[str, Any]:
        return {"model": "photos", "renderer": self.name}

    def label(self) -> str:
        return self.name

    def render(self, cell: Cell, seed: int, step_callback: Any) -> Generated:
        margin = 2 * self.calls
        self.calls += 1
        inner = ImageOps.contain(self.choose(cell), (self.side - margin, self.side - margin))
        image = ImageOps.pad(inner, (self.side, self.side), color=(128, 128, 128))
        settings = cell.settings
        return Generated(image, {"prompt": cell.prompt, "seed": seed, "model": "photos", "loras": [],
                                 "steps": settings.steps, "guidance": settings.guidance})
