"""When the editor flywheel skips its training: the one rule the headless loop and the graph share.

An editor LoRA trained on a handful of triplets learns nothing useful, so below ``min_triplets``
the training and the editor comparison are skipped, and the reason is recorded instead. In a
ComfyUI graph the skip travels along the wires: TripletWriter hands a ``Skipped`` marker on its
triplets output, the training node passes it through with a summary that starts with
``skipped: ``, and Compare Editors, waiting for that summary, passes through too, so a turn
with too few corrections still finishes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

DEFAULT_MIN_TRIPLETS = 10
SKIPPED = "skipped: "


@dataclass(frozen=True)
class Skipped:
    """A step that decided not to run, with the reason the steps after it repeat."""

    reason: str

    @property
    def text(self) -> str:
        return SKIPPED + self.reason

    def image(self) -> Image.Image:
        """A small picture of the reason, for image outputs that have nothing else to show."""
        picture = Image.new("RGB", (512, 128), (32, 32, 32))
        ImageDraw.Draw(picture).multiline_text((12, 12), "\n".join(textwrap.wrap(self.text, 60)),
                                               fill=(230, 230, 230))
        return picture


def too_few_triplets(count: int, minimum: int) -> Skipped | None:
    """The skip when ``count`` triplets are fewer than ``minimum`` (the editor's ``min_triplets``)."""
    if count < minimum:
        return Skipped(f"{count} triplets, fewer than {minimum}")
    return None


def skipped_in(*values: Any) -> Skipped | None:
    """The first skip among wired inputs: a ``Skipped`` marker, or a summary text that starts with
    ``skipped: `` (what a skipped node returns as its summary)."""
    for value in values:
        if isinstance(value, Skipped):
            return value
        if isinstance(value, str) and value.startswith(SKIPPED):
            return Skipped(value.removeprefix(SKIPPED).strip())
    return None
