"""Draw docs/icon.png, the pack's Registry and Manager icon: two meshing flywheels that read at 64 px.

    python scripts/draw_icon.py

The Registry shows the icon small, so it is two bold spoked wheels (blue: the character flywheel,
orange: the editor flywheel) with turning arrows and nothing finer than a 64 px copy can show. It
is drawn at four times its size and scaled down, which gives smooth edges with Pillow alone.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "docs" / "icon.png"
SIZE = 400
SCALE = 4
BACKGROUND = "#1d2633"
CHARACTER = "#4c9be8"
EDITOR = "#f58518"


def wheel(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, color: str, spokes: int,
          turn: float) -> None:
    """A flywheel: a heavy rim, a hub and spokes, with teeth so the two wheels visibly mesh."""
    teeth = spokes * 2
    for i in range(teeth):
        angle = turn + 2 * math.pi * i / teeth
        tx, ty = cx + math.cos(angle) * radius * 1.04, cy + math.sin(angle) * radius * 1.04
        tooth = radius * 0.16
        draw.ellipse((tx - tooth, ty - tooth, tx + tooth, ty + tooth), fill=color)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=color)
    inner = radius * 0.74
    draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=BACKGROUND)
    for i in range(spokes):
        angle = turn + 2 * math.pi * i / spokes
        end = (cx + math.cos(angle) * inner * 1.02, cy + math.sin(angle) * inner * 1.02)
        draw.line(((cx, cy), end), fill=color, width=int(radius * 0.16))
    hub = radius * 0.26
    draw.ellipse((cx - hub, cy - hub, cx + hub, cy + hub), fill=color)
    dot = radius * 0.09
    draw.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=BACKGROUND)


def turning_arrow(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, start: float, end: float,
                  color: str, clockwise: bool) -> None:
    """An arc around a wheel with a head at its end, so the picture says "it turns"."""
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    draw.arc(box, start, end, fill=color, width=int(radius * 0.1))
    tip = math.radians(end if clockwise else start)
    direction = tip + (math.pi / 2 if clockwise else -math.pi / 2)
    px, py = cx + math.cos(tip) * radius, cy + math.sin(tip) * radius
    length, half = radius * 0.22, radius * 0.14
    back = (px - math.cos(direction) * length, py - math.sin(direction) * length)
    normal = (math.cos(tip), math.sin(tip))
    draw.polygon([(px + math.cos(direction) * length * 0.3, py + math.sin(direction) * length * 0.3),
                  (back[0] + normal[0] * half, back[1] + normal[1] * half),
                  (back[0] - normal[0] * half, back[1] - normal[1] * half)], fill=color)


def draw() -> Image.Image:
    big = SIZE * SCALE
    image = Image.new("RGB", (big, big), BACKGROUND)
    pen = ImageDraw.Draw(image)
    wheel(pen, big * 0.40, big * 0.42, big * 0.27, CHARACTER, spokes=6, turn=0.0)
    wheel(pen, big * 0.745, big * 0.72, big * 0.17, EDITOR, spokes=5, turn=0.3)
    turning_arrow(pen, big * 0.40, big * 0.42, big * 0.345, 150, 250, "#d9e6f5", clockwise=True)
    turning_arrow(pen, big * 0.745, big * 0.72, big * 0.235, 340, 70, "#ffd8a8", clockwise=True)
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
