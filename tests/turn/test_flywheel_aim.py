"""The turn aims generation at the last card's misses, and flywheel.json / flywheel.html show it per turn."""

from __future__ import annotations

import json

from flenwheel.core.data.project import Project
from flenwheel.core.data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS
from flenwheel.core.turn.config import TurnConfig
from flenwheel.core.turn.flywheel_report import write_flywheel_report
from flenwheel.core.turn.loop import card_rates
from flenwheel.core.turn.state import FlywheelState, new_entry
from flenwheel.core.turn.turn import Turn


def _card(label: str, failed_view: str) -> dict:
    cells = [{"kind": "portrait", "angle": a, "expression": e,
              "first_try_outcome": "failure" if a == failed_view else "success"}
             for a in CARD_ANGLES for e in CARD_EXPRESSIONS]
    group = {"first_try": {"rate": 1.0}}
    columns = {a: {"first_try": {"rate": 0.0 if a == failed_view else 1.0}} for a in CARD_ANGLES}
    return {"format": 1, "lora_version": label, "cells": cells,
            "summary": {"rows": {e: {"first_try": {"rate": 0.8}} for e in CARD_EXPRESSIONS}, "columns": columns,
                        "poses": group}}


def test_turn_two_aims_at_turn_ones_failed_cells_and_the_report_draws_each_turn(tmp_path, solid_image):
    project = Project.init(tmp_path / "p", name="Ada")
    source = project.create_dataset("source")
    for index, (view, expression) in enumerate([("front", "neutral"), ("half-left", "smiling"),
                                                ("half-right", "sad"), ("profile-left", "neutral")]):
        source.add_image(solid_image(size=(64, 64), color=(40 * index, 60, 60)), angle=view, expression=expression)
    (project.benchmarks_dir / "char_v1").mkdir(parents=True)
    results = _card("char_v1", "profile-left")
    (project.benchmarks_dir / "char_v1" / "results.json").write_text(json.dumps(results))
    turn = Turn(project, TurnConfig(), auto=True, log=lambda line: None)
    state = FlywheelState.load(project, True)
    for number in (1, 2):
        turn.entry = state.current([])
        aimed, needs = turn.generation_plan()
        turn.entry.update(coverage=needs.coverage.to_json(), allocation=aimed.allocation.to_json(),
                          finished="now")
        if number == 1:
            turn.entry["card"] = card_rates(results)
            turn.entry["next_allocation"] = turn.generation_plan(2)[0].allocation.to_json()
    state.save()
    first, second = state.turns
    assert first["allocation"]["needs"]["card"] is None, "turn 1 has no earlier card"
    assert second["allocation"]["needs"]["card"] == "char_v1"
    assert second["allocation"]["budget"] == first["allocation"]["budget"]
    assert second["allocation"]["by_view"]["profile-left"] > first["allocation"]["by_view"]["profile-left"]
    assert first["next_allocation"]["by_view"] == second["allocation"]["by_view"]
    assert first["coverage"]["views"] == {"front": 1, "half-left": 1, "profile-left": 1, "half-right": 1,
                                          "profile-right": 0}
    assert first["card"]["columns"]["profile-left"] == 0.0
    write_flywheel_report(state)
    html = (project.root / "reports" / "flywheel.html").read_text()
    assert 'id="aiming"' in html and "Turn 1" in html and "Turn 2" in html and "(card char_v1)" in html
    profile_left = html[html.index("<td class=\"l\">profile-left</td>", html.index("Turn 1")):]
    row = profile_left[:profile_left.index("</tr>")]
    assert f"> {first['allocation']['by_view']['profile-left']}</td>" in row
    assert f"> {first['next_allocation']['by_view']['profile-left']}</td>" in row
    assert "0%" in row, "the card's column success of the failed view"
    saved = json.loads((project.root / "reports" / "flywheel.json").read_text())
    assert all(t["coverage"] and t["allocation"] for t in saved["turns"])


def test_a_report_written_before_aiming_still_renders(tmp_path):
    project = Project.init(tmp_path / "p", name="Ada")
    state = FlywheelState.load(project)
    entry = {k: v for k, v in new_entry(1, []).items()
             if k not in ("coverage", "allocation", "enrich_aim", "card", "next_allocation")}
    state.data["turns"] = [entry | {"finished": "now"}]
    write_flywheel_report(state)
    assert 'id="aiming"' not in (project.root / "reports" / "flywheel.html").read_text()
