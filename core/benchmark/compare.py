"""v1 -> v2: did the next flywheel turn improve the model card? (the seed's step 1.8)

``compare_results`` pairs the cells of two results.json files by id and says, per cell, whether
the first try was gained, lost, kept or is still failing, with the identity distance before and
after; the net gain is cells gained minus cells lost. Only verified successes count (the rule
of ``results.outcome``): a cell whose first try is unverified is "still failing", shown as such.
``write_comparison`` writes ``benchmarks/compare_<a>_<b>.html`` (self-contained) and ``.png``
(both cards side by side under a header with the rates and the net gain).

A comparison is like-for-like only when both runs used the same prompts, seeds, sizes and tries;
otherwise it is still written, with the differences listed as warnings at the top.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ..data.atomic import atomic_write_bytes
from ..data.errors import FlenwheelError
from ..data.html_pages import data_uri
from ..data.images import load_image, png_bytes
from ..data.project import Project
from .report import render
from .results import CARD_FILE, RESULTS_FILE, load_results
from .run import benchmark_label

GREEN, RED, TEXT, BACKGROUND = (46, 157, 79), (200, 65, 59), (235, 235, 235), (24, 24, 24)


def _change(before: bool | None, after: bool | None) -> str:
    if before is None or after is None:
        return "only in " + ("the second" if before is None else "the first")
    return {(False, True): "gained", (True, False): "lost", (True, True): "kept"}.get((before, after), "still failing")


def _distance(cell: dict[str, Any] | None) -> float | None:
    if not cell or not cell["tries"]:
        return None
    return (cell["tries"][0].get("checks", {}).get("identity") or {}).get("value")


def _warnings(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    found = []
    if a["summary"]["tries"] != b["summary"]["tries"]:
        found.append(f"different numbers of tries ({a['summary']['tries']} vs {b['summary']['tries']})")
    cells_b = {c["id"]: c for c in b["cells"]}
    differ = [c["id"] for c in a["cells"] if c["id"] in cells_b
              and (c["prompt"], c["seeds"], c["settings"]) != (cells_b[c["id"]]["prompt"], cells_b[c["id"]]["seeds"],
                                                               cells_b[c["id"]]["settings"])]
    if differ:
        found.append(f"{len(differ)} cells differ in prompt, seeds or size (e.g. {differ[0]}): not like-for-like")
    for label, results in (("first", a), ("second", b)):
        if not results["summary"]["complete"]:
            found.append(f"the {label} run ({results['lora_version']}) is incomplete")
    return found


def compare_results(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per-cell changes from ``a`` to ``b`` and the totals (see the module docstring)."""
    cells_a = {c["id"]: c for c in a["cells"]}
    cells_b = {c["id"]: c for c in b["cells"]}
    rows = []
    for cell_id in list(cells_a) + [i for i in cells_b if i not in cells_a]:
        ca, cb = cells_a.get(cell_id), cells_b.get(cell_id)
        rows.append({
            "id": cell_id,
            "label": (ca or cb)["label"],
            "first_try": [ca and ca["first_try_success"], cb and cb["first_try_success"]],
            "outcome": [ca and ca.get("first_try_outcome"), cb and cb.get("first_try_outcome")],
            "any_of_k": [ca and ca["any_success"], cb and cb["any_success"]],
            "change": _change(ca and ca["first_try_success"], cb and cb["first_try_success"]),
            "identity_distance": [_distance(ca), _distance(cb)],
            "failures": [ca["tries"][0]["failures"] if ca and ca["tries"] else None,
                         cb["tries"][0]["failures"] if cb and cb["tries"] else None],
        })
    gained = sum(r["change"] == "gained" for r in rows)
    lost = sum(r["change"] == "lost" for r in rows)
    sa, sb = a["summary"], b["summary"]
    return {
        "versions": [a["lora_version"], b["lora_version"]],
        "first_try_rate": [sa["first_try"]["rate"], sb["first_try"]["rate"]],
        "first_try_unverified": [sa.get("first_try_unverified", 0), sb.get("first_try_unverified", 0)],
        "any_of_k_rate": [sa["any_of_k"]["rate"], sb["any_of_k"]["rate"]],
        "target_met": [sa["target_met"], sb["target_met"]],
        "gained": gained,
        "lost": lost,
        "net_gain": gained - lost,
        "improved": gained - lost > 0,
        "warnings": _warnings(a, b),
        "cells": rows,
    }


def _short(label: str) -> str:
    return label.removeprefix("char_")


def _results_of(project: Project, label: str) -> dict[str, Any]:
    return load_results(project.benchmark_dir(benchmark_label(label)) / RESULTS_FILE)


def _headline(data: dict[str, Any]) -> str:
    a, b = data["versions"]
    ra, rb = data["first_try_rate"]
    ua, ub = data["first_try_unverified"]
    return (f"{a} -> {b}: first try {ra:.0%} -> {rb:.0%} verified ({ua} -> {ub} unverified, not counted), "
            f"net gain {data['net_gain']:+d} cells "
            f"({data['gained']} gained, {data['lost']} lost)")


def comparison_image(data: dict[str, Any], card_a: Image.Image, card_b: Image.Image) -> Image.Image:
    """Both cards side by side (same height) under a header with the rates and the net gain."""
    height = max(card_a.height, card_b.height)
    cards = [c.resize((round(c.width * height / c.height), height)) for c in (card_a, card_b)]
    font = ImageFont.load_default(size=28)
    header = 110
    sheet = Image.new("RGB", (sum(c.width for c in cards) + 30, height + header), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((10, 10), _headline(data), fill=GREEN if data["improved"] else RED, font=font)
    lost = [r["label"] for r in data["cells"] if r["change"] == "lost"]
    gained = [r["label"] for r in data["cells"] if r["change"] == "gained"]
    detail = f"lost: {', '.join(lost) or 'none'} | gained: {', '.join(gained) or 'none'}"
    width = max(40, sheet.width // 11)
    draw.text((10, 52), textwrap.shorten(detail, width, placeholder=" ..."), fill=TEXT,
              font=ImageFont.load_default(size=20))
    sheet.paste(cards[0], (10, header))
    sheet.paste(cards[1], (20 + cards[0].width, header))
    return sheet


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in data["cells"]:
        first = ["-" if v is None else "yes" if v else "unverified" if o == "unverified" else "no"
                 for v, o in zip(r["first_try"], r.get("outcome", [None, None]), strict=True)]
        rows.append({
            "label": r["label"], "change": r["change"], "css": {"gained": "ok", "lost": "bad"}.get(r["change"], ""),
            "first": first, "any": ["-" if v is None else "yes" if v else "no" for v in r["any_of_k"]],
            "distance": ["-" if v is None else f"{v:.3f}" for v in r["identity_distance"]],
            "failures": ["; ".join(f or []) or "-" for f in r["failures"]],
        })
    return rows


def write_comparison(project: Project, first: str, second: str) -> tuple[Path, Path, dict[str, Any]]:
    """Write ``benchmarks/compare_<first>_<second>.html`` and ``.png``; returns both paths and the data."""
    a, b = _results_of(project, first), _results_of(project, second)
    if a["lora_version"] == b["lora_version"]:
        raise FlenwheelError(f"both sides are {a['lora_version']}; compare two different versions")
    data = compare_results(a, b)
    cards = [load_image(project.benchmark_dir(r["lora_version"]) / CARD_FILE) for r in (a, b)]
    image = comparison_image(data, *cards)
    stem = f"compare_{_short(a['lora_version'])}_{_short(b['lora_version'])}"
    png_path = project.benchmarks_dir / f"{stem}.png"
    atomic_write_bytes(png_path, png_bytes(image, {"comparison": {k: v for k, v in data.items() if k != "cells"}}))
    page = render("compare.html.j2", f"Model card {stem}", data=data, headline=_headline(data),
                  cards=[data_uri(c) for c in cards], rows=_rows(data))
    html_path = png_path.with_suffix(".html")
    atomic_write_bytes(html_path, page.encode("utf-8"))
    return html_path, png_path, data
