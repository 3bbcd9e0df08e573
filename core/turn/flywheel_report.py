"""``reports/flywheel.html`` and ``reports/flywheel.png``: the loop at a glance.

The chart has three panels: verified first-try success per turn against the target line (the
unverified cells stacked above it, in another colour, because they are not counted), the
enrichment's correction rate per turn (the editor flywheel's measure), and the images kept at each
stage per turn. The page is a Jinja2 template (``flywheel.html.j2``) over ``flywheel.json``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..data.atomic import atomic_write_bytes
from ..data.html_pages import render_page
from .aim_report import CONTEXT as AIM_CONTEXT
from .aim_report import aim_rows
from .state import STAGES, FlywheelState, flywheel_path

TEMPLATE = "flywheel.html.j2"
PNG_FILE, HTML_FILE = "flywheel.png", "flywheel.html"
KEPT_STAGES = ("sources", "enriched", "good", "corrections", "triplets", "synthetic", "kept", "pristine")
#: the images line of a turn's details row: (flywheel.json key, what the page calls it)
IMAGE_TITLES = (("sources", "sources"), ("enriched", "enriched"), ("good", "good"), ("corrections", "corrections"),
                ("synthetic", "synthetic"), ("kept", "kept by filter"), ("pristine", "pristine"),
                ("triplets", "triplets"))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f} pts"


def _empty_bars_note(turns: list[dict[str, Any]]) -> str:
    """Why a bar may be empty or smaller than the next: what each count is, said under the panel."""
    images = [t.get("images", {}) for t in turns]
    lines = ["kept = passed the identity filter; pristine = picked in review from the images sent to it"]
    if any(i.get("kept", 0) < i.get("pristine", 0) for i in images):
        lines.append("pristine > kept: filter.send_to_review: all sent every synthetic image to review")
    if any(i.get("synthetic") and not i.get("kept") for i in images):
        lines.append("kept 0: no synthetic image matched the reference faces (no face found, or another face)")
    if any(i.get("enriched") and not i.get("corrections") for i in images):
        lines.append("corrections 0: no edit was reviewed as needs correction, so no triplets")
    return "\n".join(lines)


def chart_png(data: dict[str, Any]) -> bytes:
    """The three panels as PNG bytes (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = [t for t in data["turns"] if t.get("finished")] or data["turns"]
    numbers = [t["turn"] for t in turns]
    target = data.get("target") or 0.8
    figure, (success, corrections, kept) = plt.subplots(1, 3, figsize=(15, 4.2))
    cells = [max(1, (t.get("first_try") or {}).get("cells", 1)) for t in turns]
    verified = [(t.get("first_try") or {}).get("verified", 0) / c for t, c in zip(turns, cells, strict=True)]
    unverified = [(t.get("first_try") or {}).get("unverified", 0) / c for t, c in zip(turns, cells, strict=True)]
    success.bar(numbers, verified, color="#2e9d4f", label="verified (counts)")
    success.bar(numbers, unverified, bottom=verified, color="#d69628", label="unverified (not counted)")
    for number, turn, share in zip(numbers, turns, verified, strict=True):
        first = turn.get("first_try") or {}
        label = f"{first.get('verified', 0)}/{first.get('cells', 0)}\n+{first.get('unverified', 0)} unverified"
        success.annotate(label, (number, share), ha="center", va="bottom", fontsize=8)
    success.axhline(target, color="#c8413b", linestyle="--", label=f"target {target:.0%}")
    success.set(title="first-try success per turn", xlabel="turn", ylim=(0, 1), xticks=numbers)
    success.legend(loc="upper left", fontsize=8, framealpha=0.9)
    if not any(verified) and not any(unverified):
        success.text(0.0, -0.3, "no bar: no model-card cell passed every check on the first try",
                     transform=success.transAxes, fontsize=7, va="top")
    rates = [t.get("correction_rate") for t in turns]
    corrections.plot(numbers, [r if r is not None else float("nan") for r in rates], marker="o", color="#3b6fc8")
    corrections.set(title="correction rate of the enrichment", xlabel="turn", ylim=(0, 1), xticks=numbers)
    width = 0.8 / max(1, len(turns))
    for index, turn in enumerate(turns):
        positions = [i + index * width for i in range(len(KEPT_STAGES))]
        counts = [turn.get("images", {}).get(k, 0) for k in KEPT_STAGES]
        bars = kept.bar(positions, counts, width, label=f"turn {turn['turn']}")
        kept.bar_label(bars, fontsize=7)  # a 0 is written, so an empty bar reads as zero, not as missing
    kept.set_xticks([i + 0.4 - width / 2 for i in range(len(KEPT_STAGES))], KEPT_STAGES, rotation=35, fontsize=8)
    kept.set(title="images per stage")
    kept.legend(fontsize=8)
    kept.text(0.0, -0.42, _empty_bars_note(turns), transform=kept.transAxes, fontsize=7, va="top", wrap=True)
    if data.get("auto_review"):
        figure.suptitle("auto-review (demo only, not a human)", color="#c8413b")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def report_links(turn: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, href) of every report, chart and loss curve of a turn, relative to ``reports/`` where the page is."""
    links = []
    for name, path in (turn.get("reports") or {}).items():
        href = Path(path).as_uri() if Path(path).is_absolute() else f"../{quote(path)}"
        links.append((name, href))
    return links


def render_html(data: dict[str, Any], png_name: str) -> str:
    last = next((t for t in reversed(data["turns"]) if t.get("first_try")), None)
    target = data.get("target") or 0.8
    return render_page(Path(__file__).resolve().parent, TEMPLATE,
        project=data.get("project"), auto_review=data.get("auto_review"), turns=data["turns"], png=png_name,
        stopped=data.get("stopped"), target=target, stages=STAGES, pct=_pct, signed=_signed, kept=IMAGE_TITLES,
        links=report_links, target_met=bool(last and last["first_try"]["rate"] >= target), aim=aim_rows(data["turns"]),
        **AIM_CONTEXT)


def write_flywheel_report(state: FlywheelState) -> dict[str, str]:
    """Write flywheel.png and flywheel.html next to flywheel.json; returns the three paths."""
    folder = flywheel_path(state.project).parent
    png, html = folder / PNG_FILE, folder / HTML_FILE
    atomic_write_bytes(png, chart_png(state.data))
    atomic_write_bytes(html, render_html(state.data, PNG_FILE).encode("utf-8"))
    return {"json": str(flywheel_path(state.project)), "html": str(html), "png": str(png)}
