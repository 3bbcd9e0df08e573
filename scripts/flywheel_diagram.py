"""Draw docs/images/flywheel.png, the README's picture of the two flywheels (needs matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "flywheel.png"

CHARACTER = [
    ("1.1 Curate\nsources", "#4c78a8"),
    ("1.2 Enrich\nQwen-Edit-2509", "#4c78a8"),
    ("1.3 Review\ngood / fix / reject", "#e45756"),
    ("1.4 Train\nFLUX LoRA vN", "#54a24b"),
    ("1.5 Generate\nsynthetic", "#4c78a8"),
    ("1.6 Identity\nfilter", "#b279a2"),
    ("1.7 Review\npristine", "#e45756"),
    ("1.8 Iterate\nvN+1", "#54a24b"),
]
EDITOR = [
    ("2.1 Corrections\n-> triplets", "#f58518"),
    ("2.2 Train\nQwen-Edit LoRA", "#54a24b"),
    ("2.3 Enrich with\nour editor", "#f58518"),
]


def box(ax, x, y, text, color, width=1.78, height=0.66):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                fc=color, ec="white", lw=2, alpha=0.95))
    ax.text(x, y, text, ha="center", va="center", color="white", fontsize=9, weight="bold")


def arrow(ax, start, end, color="#555555", rad=0.15):
    ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                 mutation_scale=14, color=color, lw=1.6, shrinkA=34, shrinkB=34))


def main() -> None:
    fig, ax = plt.subplots(figsize=(12, 6.4), dpi=110)
    ax.set_xlim(-4.2, 8.8)
    ax.set_ylim(-3.3, 3.3)
    ax.axis("off")
    centre, radius = (0.0, 0.0), 2.45
    points = []
    for index, (text, color) in enumerate(CHARACTER):
        angle = math.pi / 2 - index * 2 * math.pi / len(CHARACTER)
        point = (centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle))
        points.append(point)
        box(ax, *point, text, color)
    for index, point in enumerate(points):
        arrow(ax, point, points[(index + 1) % len(points)], rad=-0.18)
    ax.text(*centre, "Character\nflywheel\n\nuntil the model card\npasses 80% first try", ha="center",
            va="center", fontsize=11, color="#333333")
    editor_centre, editor_radius = (6.1, 0.0), 1.6
    editor_points = []
    for index, (text, color) in enumerate(EDITOR):
        angle = math.pi / 2 - index * 2 * math.pi / len(EDITOR)
        point = (editor_centre[0] + editor_radius * math.cos(angle), editor_centre[1] + editor_radius * math.sin(angle))
        editor_points.append(point)
        box(ax, *point, text, color)
    for index, point in enumerate(editor_points):
        arrow(ax, point, editor_points[(index + 1) % len(editor_points)], rad=-0.25)
    ax.text(*editor_centre, "Editor\nflywheel", ha="center", va="center", fontsize=11, color="#333333")
    arrow(ax, points[2], editor_points[0], color="#f58518", rad=-0.25)
    arrow(ax, editor_points[2], points[1], color="#f58518", rad=0.3)
    ax.text(2.75, 0.62, "needs_correction", color="#f58518", fontsize=9.5, weight="bold")
    ax.text(3.75, -0.25, "better edits", color="#f58518", fontsize=9.5, weight="bold")
    fig.suptitle("FLENwheel: 10-20 photos -> a FLUX character LoRA", fontsize=14, weight="bold")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, bbox_inches="tight", facecolor="white")
    print(OUT)


if __name__ == "__main__":
    main()
