"""Draw workflows/*.jpg, the template browser's thumbnails: the stage's name, large, over what it makes.

    python scripts/template_thumbnails.py

ComfyUI's template browser shows a 400x300 picture per template; a shot of the graph is
illegible at that size, so each thumbnail shows the step number and title large and, below, a
picture of what the stage produces: the curated photos, edits, the review grid with its labels, a
loss curve, a model card. Pictures come from the default demo character (the photo matplotlib ships,
varied as `flenwheel demo` varies it; core/turn/demo_photos.py) and docs/images; the character
flywheel is blue, the editor flywheel orange. No photo from another repository is drawn.
"""

from __future__ import annotations

import functools
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from flenwheel.comfy_tools.dev.workflow_templates import templates
from flenwheel.core.data.images import load_image
from flenwheel.core.turn.demo_photos import VARIANTS, packaged_photo

ROOT = Path(__file__).resolve().parent.parent

SIZE = (400, 300)
BAND = 112
BACKGROUND = "#1d2633"
CHARACTER, EDITOR = "#4c9be8", "#f58518"
GOOD, FIX, REJECT = "#3fb950", "#d29922", "#f85149"
EDITOR_STEPS = {"09", "10", "11"}
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "DejaVuSans-Bold.ttf")

Panel = Callable[[Image.Image, ImageDraw.ImageDraw, tuple[int, int, int, int]], None]


def font(size: int) -> ImageFont.FreeTypeFont:
    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


@functools.cache
def demo_photos() -> tuple[Image.Image, ...]:
    """The demo character's variants (the small copy left out), made as the demo makes them."""
    original = load_image(packaged_photo())
    return tuple(make(original) for name, _, make in VARIANTS if name != "hopper_small.png")


def photo(index: int, side: int) -> Image.Image:
    """A square crop of one of the demo character's photos (mirrored on odd passes, as the demo does)."""
    pictures = demo_photos()
    picture = pictures[index % len(pictures)]
    if (index // len(pictures)) % 2:
        picture = ImageOps.mirror(picture)
    return ImageOps.fit(picture, (side, side), Image.LANCZOS, centering=(0.5, 0.3))


def edited(index: int, side: int, kind: int) -> Image.Image:
    """A sample photo with a plain adjustment standing in for an edit (light, colour, style)."""
    picture = photo(index, side)
    if kind == 0:
        return ImageEnhance.Brightness(picture).enhance(1.35)
    if kind == 1:
        return ImageOps.colorize(ImageOps.grayscale(picture), "#2b1a4a", "#ffd6a0")
    if kind == 2:
        return picture.filter(ImageFilter.EDGE_ENHANCE_MORE).filter(ImageFilter.SMOOTH)
    return ImageOps.mirror(picture)


def tiles(canvas: Image.Image, draw: ImageDraw.ImageDraw, box, pictures: list[Image.Image],
          labels: list[str | None] | None = None) -> None:
    """Pictures in one row, centred in ``box``, each with an optional coloured label bar."""
    left, top, right, bottom = box
    side = pictures[0].width
    gap = (right - left - side * len(pictures)) // (len(pictures) + 1)
    y = top + (bottom - top - side) // 2
    for index, picture in enumerate(pictures):
        x = left + gap + index * (side + gap)
        canvas.paste(picture, (x, y))
        color = labels[index] if labels else None
        if color:
            draw.rectangle((x, y + side - 12, x + side, y + side), fill=color)
            draw.rectangle((x - 2, y - 2, x + side + 1, y + side + 1), outline=color, width=3)


def curve(draw: ImageDraw.ImageDraw, box, color: str, seed: int, drop: float = 0.55) -> None:
    """A noisy falling loss curve and its moving average, as the training nodes plot it."""
    left, top, right, bottom = box
    rng = random.Random(seed)
    steps = 60
    raw = [0.9 - drop * (1 - math.exp(-s / 18)) + rng.uniform(-0.14, 0.14) for s in range(steps)]
    average = [sum(raw[max(0, s - 5):s + 1]) / len(raw[max(0, s - 5):s + 1]) for s in range(steps)]

    def points(values: list[float]) -> list[tuple[float, float]]:
        return [(left + (right - left) * s / (steps - 1), bottom - (bottom - top) * v) for s, v in enumerate(values)]

    draw.line([(left, bottom), (right, bottom)], fill="#5a6778", width=2)
    draw.line([(left, top), (left, bottom)], fill="#5a6778", width=2)
    draw.line(points(raw), fill="#8aa4c0", width=2)
    draw.line(points(average), fill=color, width=5)


def arrow(draw: ImageDraw.ImageDraw, start: tuple[int, int], end: tuple[int, int], color: str = "#d9e6f5") -> None:
    draw.line([start, end], fill=color, width=4)
    x, y = end
    draw.polygon([(x, y), (x - 12, y - 8), (x - 12, y + 8)], fill=color)


def curate(canvas, draw, box):
    tiles(canvas, draw, box, [photo(i, 84) for i in range(4)])


def enrich(canvas, draw, box):
    left, top, right, bottom = box
    canvas.paste(photo(0, 110), (left + 14, top + 34))
    arrow(draw, (left + 132, top + 89), (left + 168, top + 89))
    for index in range(4):
        x, y = left + 180 + (index % 2) * 100, top + 8 + (index // 2) * 92
        canvas.paste(edited(0, 86, index), (x, y))


def review(canvas, draw, box):
    labels = [GOOD, FIX, GOOD, REJECT]
    tiles(canvas, draw, box, [edited(i, 80, i) for i in range(4)], labels)


def train(color: str, seed: int) -> Panel:
    def panel(canvas, draw, box):
        left, top, right, bottom = box
        curve(draw, (left + 30, top + 16, right - 30, bottom - 16), color, seed)
    return panel


def generate(canvas, draw, box):
    tiles(canvas, draw, box, [edited(i + 2, 84, 3 if i % 2 else 0) for i in range(4)])


def identity(canvas, draw, box):
    tiles(canvas, draw, box, [photo(i, 84) for i in range(4)], [GOOD, GOOD, REJECT, GOOD])
    marks = font(20)
    left, top, right, _ = box
    gap = (right - left - 84 * 4) // 5
    for index, text in enumerate(("0.71", "0.66", "0.31", "0.69")):
        draw.text((left + gap + index * (84 + gap) + 4, top + 14), text, font=marks, fill="#ffffff",
                  stroke_width=3, stroke_fill="#000000")


def pristine(canvas, draw, box):
    left, top, right, bottom = box
    tiles(canvas, draw, (left, top, left + 250, bottom), [photo(i + 1, 70) for i in range(3)], [GOOD, None, GOOD])
    cell = 22
    for row in range(4):
        for column in range(5):
            filled = (row * 5 + column) % 3 != 1
            x, y = left + 262 + column * cell, top + 40 + row * cell
            draw.rectangle((x, y, x + cell - 3, y + cell - 3), fill=GOOD if filled else "#3a4656")


def iterate(canvas, draw, box):
    left, top, right, bottom = box
    plot = (left + 30, top + 16, right - 30, bottom - 16)
    curve(draw, plot, "#8aa4c0", 5, drop=0.35)
    curve(draw, plot, CHARACTER, 6, drop=0.6)


def triplets(canvas, draw, box):
    left, top, _, _ = box
    for index, picture in enumerate((photo(1, 96), edited(1, 96, 2), edited(1, 96, 0))):
        x = left + 18 + index * 128
        canvas.paste(picture, (x, top + 40))
        if index:
            arrow(draw, (x - 28, top + 88), (x - 6, top + 88))
    draw.rectangle((left + 146, top + 38, left + 243, top + 137), outline=FIX, width=3)
    draw.rectangle((left + 274, top + 38, left + 371, top + 137), outline=GOOD, width=3)


def editors(canvas, draw, box):
    left, top, right, bottom = box
    for index, (value, color) in enumerate(((0.42, "#8aa4c0"), (0.71, EDITOR), (0.58, "#8aa4c0"), (0.83, EDITOR))):
        x = left + 60 + index * 74
        draw.rectangle((x, bottom - 16 - (bottom - top - 40) * value, x + 48, bottom - 16), fill=color)
    draw.line([(left + 40, bottom - 16), (right - 40, bottom - 16)], fill="#5a6778", width=2)


def picture_of(path: Path, top_share: float = 1.0) -> Panel:
    """A picture from docs/images (its top ``top_share``, so a tall model card shows readable cells)."""
    def panel(canvas, draw, box):
        left, top, right, bottom = box
        image = Image.open(path).convert("RGB")
        image = image.crop((0, 0, image.width, int(image.height * top_share)))
        image.thumbnail((right - left - 16, bottom - top - 12), Image.LANCZOS)
        canvas.paste(image, (left + (right - left - image.width) // 2, top + (bottom - top - image.height) // 2))
    return panel


PANELS: dict[str, Panel] = {
    "01": curate, "02": enrich, "03": review, "04": train(CHARACTER, 1), "05": generate, "06": identity,
    "07": pristine, "08": iterate, "09": triplets, "10": train(EDITOR, 2), "11": editors,
    "12": picture_of(ROOT / "docs" / "images" / "model_card_example.jpg", 0.42),
    "13": picture_of(ROOT / "docs" / "images" / "flywheel.png"),
    "14": generate, "15": enrich,
    "16": picture_of(ROOT / "docs" / "images" / "model_card_example.jpg", 0.42),
    "17": generate,
    "18": picture_of(ROOT / "docs" / "images" / "model_card_example.jpg", 0.42),
}


def wrap(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=face) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return [*lines, line]


def thumbnail(name: str) -> Image.Image:
    number, _, title = name.partition(" ")
    accent = EDITOR if number in EDITOR_STEPS else CHARACTER
    canvas = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, SIZE[0], BAND), fill="#141b24")
    draw.rectangle((0, 0, 10, BAND), fill=accent)
    big = font(64)
    draw.text((22, 14), number, font=big, fill=accent)
    x = 22 + int(draw.textlength(number, font=big)) + 14
    for size in (30, 26, 22):
        face = font(size)
        lines = wrap(draw, title, face, SIZE[0] - x - 10)
        if len(lines) <= 2 and all(draw.textlength(line, font=face) <= SIZE[0] - x - 10 for line in lines):
            break
    line_height = face.size + 6
    y = (BAND - line_height * len(lines)) // 2
    for line in lines:
        draw.text((x, y), line, font=face, fill="#ffffff")
        y += line_height
    PANELS[number](canvas, draw, (0, BAND, SIZE[0], SIZE[1]))
    return canvas


def main() -> int:
    folder = ROOT / "workflows"
    for template in templates():
        path = folder / f"{template.name}.jpg"
        thumbnail(template.name).save(path, quality=88, optimize=True)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
