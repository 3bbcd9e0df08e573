"""The honest stop rule: a model-card cell is a success only when every criterion it names was verified."""

from __future__ import annotations

import pytest

from flenwheel.core.benchmark.compare import compare_results
from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.benchmark.results import named_criteria, outcome, unverified_criteria
from flenwheel.core.review.stages import AUTO_REVIEWER

PASS = {"status": "pass"}


@pytest.fixture(scope="module")
def cells():
    return {cell.id: cell for cell in load_card(tries=1).cells("ohwx_char person", "ohwx_char")}


def _all_pass(cell):
    return {name: PASS for name in cell.checks}


def test_a_cell_with_an_unverified_criterion_never_counts_as_a_success(cells):
    angry = cells["front-angry"]
    assert "expression" in named_criteria(angry)
    checks = _all_pass(angry) | {"expression": {"status": "not measured"}}
    missing = unverified_criteria(named_criteria(angry), checks, None)
    assert missing == ["expression"] and outcome([], missing) == "unverified"
    auto = {"label": "correct", "reviewer": AUTO_REVIEWER}
    assert unverified_criteria(named_criteria(angry), checks, auto) == ["expression"], \
        "the demo's auto-review verifies nothing"
    human = {"label": "correct", "reviewer": "ada"}
    assert outcome([], unverified_criteria(named_criteria(angry), checks, human)) == "success"


def test_pose_cells_need_a_pose_check_or_a_person(cells):
    pose = cells["t-pose"]
    checks = _all_pass(pose) | {"body_pose": {"status": "n/a"}}
    assert unverified_criteria(named_criteria(pose), checks, None) == ["body_pose"]
    assert unverified_criteria(named_criteria(pose), _all_pass(pose), None) == []


def test_a_check_not_run_leaves_its_criterion_unverified_and_a_failure_wins(cells):
    front = cells["front-neutral"]
    checks = _all_pass(front) | {"head_angle": {"status": "n/a"}, "expression": {"status": "not measured"}}
    assert unverified_criteria(named_criteria(front), checks, None) == ["head_angle", "expression"]
    assert outcome(["identity: no face"], ["expression"]) == "failure"


def _results(version, outcomes):
    cells = [{"id": i, "label": i, "prompt": i, "seeds": [1], "settings": {}, "first_try_success": o == "success",
              "first_try_outcome": o, "any_success": o == "success",
              "tries": [{"failures": [], "checks": {}, "outcome": o}]} for i, o in outcomes.items()]
    rate = sum(o == "success" for o in outcomes.values()) / len(outcomes)
    unverified = sum(o == "unverified" for o in outcomes.values())
    return {"lora_version": version, "cells": cells,
            "summary": {"tries": 1, "complete": True, "first_try": {"rate": rate}, "any_of_k": {"rate": rate},
                        "target_met": rate >= 0.8, "first_try_unverified": unverified}}


def test_the_comparison_counts_unverified_apart():
    data = compare_results(_results("char_v1", {"a": "failure", "b": "failure"}),
                           _results("char_v2", {"a": "unverified", "b": "success"}))
    changes = {row["id"]: row["change"] for row in data["cells"]}
    assert changes == {"a": "still failing", "b": "gained"}
    assert data["first_try_unverified"] == [0, 1] and data["net_gain"] == 1
