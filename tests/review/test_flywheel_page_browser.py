"""reports/flywheel.html read on a laptop: at 1280 px every column is on screen and every report of a turn is linked.

Lives beside the review page's browser tests to share their Debian Chromium fixture (skips without it).
"""

from __future__ import annotations

from pathlib import Path

from flenwheel.core.turn.flywheel_report import chart_png, render_html
from flenwheel.core.turn.state import new_entry

LONG_LORA = "dx8152:/home/ada/ComfyUI/models/loras/Qwen-Edit-2509-Multiple-angles-LoRA-rank128.safetensors:1.25"


def _turn(number: int, root: Path) -> dict:
    entry = new_entry(number, ["ours:v1", LONG_LORA] if number > 1 else [LONG_LORA])
    reports = {f"model card char_v{number}": f"benchmarks/char_v{number}/report.html",
               f"loss char_v{number}": f"models/flux_lora/char_v{number}/loss.png",
               f"loss editor v{number}": f"models/qwen_lora/v{number}/loss.png",
               f"editor comparison turn{number} chart": f"benchmarks/editors/turn{number}/chart.png",
               f"editor comparison turn{number} table": f"benchmarks/editors/turn{number}/table.md"}
    if number > 1:
        reports[f"compare char_v{number - 1} -> char_v{number}"] = f"benchmarks/char_v{number}/compare_v1_v2.html"
    for path in reports.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    entry.update(finished="2026-12-06T00:00:00Z", char_lora=f"char_v{number}", reports=reports, gain=0.04,
                 images={"sources": 14, "enriched": 28, "good": 12, "corrections": 9, "synthetic": 26, "kept": 0,
                         "pristine": 26, "triplets": 9},
                 identity_pass_rate={"enrichment": 0.0, "generation": 0.0}, correction_rate=0.32,
                 first_try={"verified": 3, "unverified": 5, "cells": 28, "rate": 0.107, "target": 0.8},
                 seconds={"enrich": 120.5, "train character": 300.2}, done=["enrich"])
    entry["editor"].update(trained=f"ours:v{number}", chosen=["ours:v1", LONG_LORA],
                           why="new editor: correction rate 20% (new) vs 32% (current) on 3 held-back sources, "
                               "identity pass rate 0% (new) vs 0% (current) because no face was found in any edit")
    return entry


def test_the_flywheel_page_fits_1280_px_and_links_every_report(tmp_path, chromium):
    reports = tmp_path / "reports"
    reports.mkdir()
    data = {"format": 1, "project": "Ada", "auto_review": True, "target": 0.8,
            "turns": [_turn(1, tmp_path), _turn(2, tmp_path)],
            "stopped": {"after_turn": 2, "reason": "max_turns reached (2)"}}
    (reports / "flywheel.png").write_bytes(chart_png(data))
    page_file = reports / "flywheel.html"
    page_file.write_text(render_html(data, "flywheel.png"), encoding="utf-8")
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(page_file.as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        rights = page.eval_on_selector_all("#turns th, #turns td", "cs => cs.map(c => c.getBoundingClientRect().right)")
        assert max(rights) <= 1280
        heights = page.eval_on_selector_all("#turns tr.turn", "rs => rs.map(r => r.getBoundingClientRect().height)")
        assert max(heights) < 80, heights
        assert "max_turns reached (2). Target: 80%" in page.inner_text("body")
        hrefs = page.eval_on_selector_all("#turns a", "links => links.map(a => a.href)")
        page.screenshot(path=str(tmp_path / "flywheel-1280.png"), full_page=True)
    finally:
        page.close()
    expected = {path for turn in data["turns"] for path in turn["reports"].values()}
    assert len(hrefs) == len(expected) == 11
    assert {Path(href.removeprefix("file://")).resolve().relative_to(tmp_path).as_posix() for href in hrefs} == expected


def test_the_chart_says_why_bars_are_empty():
    from flenwheel.core.turn.flywheel_report import _empty_bars_note

    note = _empty_bars_note([{"images": {"synthetic": 37, "kept": 0, "pristine": 26, "enriched": 28,
                                         "corrections": 0}}])
    assert "pristine > kept: filter.send_to_review: all" in note and "kept 0: no synthetic image matched" in note
    assert "corrections 0: no edit was reviewed as needs correction" in note
    assert "pristine > kept" not in _empty_bars_note([{"images": {"synthetic": 9, "kept": 5, "pristine": 3}}])
