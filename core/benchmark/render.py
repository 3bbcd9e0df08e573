"""model_card.png: the first-try images of the card, labelled, with a coloured frame per check.

Portraits form the angle x expression grid (angles across, expressions down), the poses a row
beneath it. Each tile has a thick frame for the cell's verdict (green success, amber unverified:
nothing failed but a criterion such as the expression awaits a person's verdict, red failure, grey
not generated) and a row of small frames, one per check, in the same colours (grey: not
applicable; the human verdict's frame is dark with a "?" while nobody has judged the image yet),
so a glance shows which check sank which cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .model_card import CHECKS

GREEN = (46, 157, 79)
RED = (200, 65, 59)
GREY = (110, 110, 110)
AMBER = (214, 150, 40)
PENDING = (55, 55, 55)
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
ABBREVIATIONS = {"identity": "ID", "one_face": "1F", "resolution": "RES", "sharpness": "SHP",
                 "head_angle": "ANG", "expression": "EXP", "body_pose": "POSE", "human": "HUM"}
STATUS_COLOURS = {"pass": GREEN, "fail": RED, "n/a": GREY, "not measured": PENDING}

ImageLoader = Callable[[str], Image.Image]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _badges(entry: dict[str, Any]) -> list[tuple[str, tuple[int, int, int], str]]:
    """(abbreviation, colour, status) per check of a try, then the human verdict."""
    badges = []
    for name in CHECKS:
        status = entry.get("checks", {}).get(name, {}).get("status", "n/a")
        badges.append((ABBREVIATIONS[name], STATUS_COLOURS.get(status, GREY), status))
    verdict = entry.get("verdict")
    if verdict is None:
        badges.append((ABBREVIATIONS["human"] + "?", PENDING, "pending"))
    else:
        badges.append((ABBREVIATIONS["human"], GREEN if verdict["label"] == "correct" else RED, verdict["label"]))
    return badges


def _caption(cell: dict[str, Any]) -> str:
    first = cell["tries"][0] if cell["tries"] else {"status": "missing", "failures": []}
    if first["status"] == "missing":
        return "not generated"
    if first["success"]:
        return f"success ({cell['successful_tries']}/{len(cell['tries'])} tries)"
    if first.get("outcome") == "unverified":
        return "unverified: " + ", ".join(first["unverified"])
    failed = [ABBREVIATIONS[n] for n in CHECKS if first["checks"].get(n, {}).get("status") == "fail"]
    if first.get("verdict") and first["verdict"]["label"] != "correct":
        failed.append("HUM")
    return "fails: " + " ".join(failed or ["not scored"])


def _frame_colour(first: dict[str, Any]) -> tuple[int, int, int]:
    if first["status"] == "missing":
        return GREY
    return GREEN if first["success"] else AMBER if first.get("outcome") == "unverified" else RED


class _Layout:
    """Sizes derived from the tile size, so the card scales as one piece."""

    def __init__(self, tile: int) -> None:
        self.tile = tile
        self.frame = max(4, tile // 40)
        self.badge_h = max(16, tile // 11)
        self.font = _font(max(11, tile // 19))
        self.small = _font(max(9, tile // 24))
        self.title = _font(max(16, tile // 10))
        self.line = int(self.font.size * 1.3)
        self.title_line = int(self.title.size * 1.3)
        self.block_w = tile + 2 * self.frame
        self.block_h = tile + 2 * self.frame + self.badge_h + 4 + 2 * self.line
        self.gap = max(8, tile // 24)
        self.side = max(110, tile // 2)
        self.top = 2 * self.title_line + self.line + 2 * self.gap


def _draw_cell(sheet: Image.Image, layout: _Layout, origin: tuple[int, int], cell: dict[str, Any],
               load: ImageLoader) -> None:
    draw = ImageDraw.Draw(sheet)
    x, y = origin
    first = cell["tries"][0] if cell["tries"] else {"status": "missing"}
    colour = _frame_colour(first)
    draw.rectangle([x, y, x + layout.block_w - 1, y + layout.tile + 2 * layout.frame - 1], fill=colour)
    if first["status"] == "done":
        tile = ImageOps.pad(load(first["file"]).convert("RGB"), (layout.tile, layout.tile),
                            Image.Resampling.LANCZOS, color=BACKGROUND)
        sheet.paste(tile, (x + layout.frame, y + layout.frame))
    by = y + layout.tile + 2 * layout.frame + 4
    badges = _badges(first) if first["status"] == "done" else []
    width = layout.block_w // max(1, len(badges)) if badges else 0
    for i, (abbr, badge_colour, _status) in enumerate(badges):
        bx = x + i * width
        draw.rectangle([bx + 1, by, bx + width - 2, by + layout.badge_h], outline=badge_colour, width=3)
        draw.text((bx + width // 2, by + layout.badge_h // 2 + 1), abbr, fill=TEXT, font=layout.small, anchor="mm")
    ty = by + layout.badge_h + 3
    draw.text((x, ty), cell["label"], fill=TEXT, font=layout.font)
    draw.text((x, ty + layout.line), _caption(cell), fill=GREEN if first.get("success") else TEXT, font=layout.font)


def _grid(results: dict[str, Any]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    portraits = [c for c in results["cells"] if c["kind"] == "portrait"]
    angles = list(dict.fromkeys(c["angle"] for c in portraits))
    expressions = list(dict.fromkeys(c["expression"] for c in portraits))
    return angles, expressions, [c for c in results["cells"] if c["kind"] == "pose"]


def cell_boxes(results: dict[str, Any], tile: int = 224) -> dict[str, tuple[int, int, int, int]]:
    """Where each cell's framed image sits on the card: ``{cell id: (left, top, right, bottom)}``."""
    layout = _Layout(tile)
    angles, expressions, poses = _grid(results)
    y0 = layout.top + layout.line
    step_x, step_y = layout.block_w + layout.gap, layout.block_h + layout.gap
    boxes = {}
    for cell in results["cells"]:
        if cell["kind"] == "portrait":
            column, row = angles.index(cell["angle"]), expressions.index(cell["expression"])
        else:
            column, row = poses.index(cell), len(expressions)
        left, top = layout.side + column * step_x, y0 + row * step_y
        boxes[cell["id"]] = (left, top, left + layout.block_w, top + layout.tile + 2 * layout.frame)
    return boxes


def render_card(results: dict[str, Any], load: ImageLoader, tile: int = 224) -> Image.Image:
    """The whole card for ``results`` (results.json content); ``load`` opens a project-relative file."""
    layout = _Layout(tile)
    angles, expressions, poses = _grid(results)
    columns = max(len(angles), len(poses), 1)
    rows = len(expressions) + (1 if poses else 0)
    width = layout.side + columns * (layout.block_w + layout.gap) + layout.gap
    height = layout.top + layout.line + rows * (layout.block_h + layout.gap) + 2 * layout.line + layout.gap
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    _header(draw, layout, results)
    for c, angle in enumerate(angles):
        draw.text((layout.side + c * (layout.block_w + layout.gap), layout.top), angle, fill=TEXT, font=layout.font)
    y0 = layout.top + layout.line
    row_names = expressions + (["poses"] if poses else [])
    for r, name in enumerate(row_names):
        draw.text((layout.gap, y0 + r * (layout.block_h + layout.gap) + layout.tile // 2), name, fill=TEXT,
                  font=layout.font)
    for cell_id, (left, top, _, _) in cell_boxes(results, tile).items():
        cell = next(c for c in results["cells"] if c["id"] == cell_id)
        _draw_cell(sheet, layout, (left, top), cell, load)
    legend = ("frames: green pass, amber unverified (not counted), red fail, grey n/a / not measured; "
              "HUM? = no human verdict yet.  "
              + ", ".join(f"{v} {k}" for k, v in ABBREVIATIONS.items()))
    draw.text((layout.gap, height - 2 * layout.line), legend, fill=TEXT, font=layout.small)
    return sheet


def _header(draw: ImageDraw.ImageDraw, layout: _Layout, results: dict[str, Any]) -> None:
    s = results["summary"]
    first, anyk = s["first_try"], s["any_of_k"]
    title = f"{results['project']}: model card of {results['lora_version']}"
    line = (f"first try {first['successes']}/{first['cells']} = {first['rate']:.0%} verified, "
            f"{s.get('first_try_unverified', 0)} unverified  "
            f"(target {s['target']:.0%}: {'met' if s['target_met'] else 'not met'})   "
            f"any of {s['tries']}: {anyk['rate']:.0%}   human verdicts on "
            f"{s['human']['first_try_cells_with_verdict']}/{first['cells']} first tries")
    draw.text((layout.gap, layout.gap), title, fill=TEXT, font=layout.title)
    draw.text((layout.gap, layout.gap + layout.title_line), line, fill=GREEN if s["target_met"] else RED,
              font=layout.title)
