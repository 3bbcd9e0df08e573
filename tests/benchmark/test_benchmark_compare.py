"""Comparing two result sets with known differences: gained, lost, kept, still failing, warnings."""

from __future__ import annotations

from flenwheel.core.benchmark.compare import compare_results


def results(version, outcomes, seeds=(1, 2), complete=True, distance=0.4):
    """A results.json-shaped dict whose first tries succeed as ``outcomes`` ({cell id: bool}) says."""
    cells = []
    for cell_id, success in outcomes.items():
        first = {"success": success, "failures": [] if success else ["identity: no face"],
                 "checks": {"identity": {"status": "pass" if success else "fail",
                                         "value": distance if success else None}}}
        cells.append({"id": cell_id, "label": cell_id, "prompt": f"portrait {cell_id}", "seeds": list(seeds),
                      "settings": {"width": 1024}, "tries": [first], "first_try_success": success,
                      "any_success": success})
    rate = round(sum(outcomes.values()) / len(outcomes), 4)
    return {"lora_version": version, "cells": cells,
            "summary": {"tries": len(seeds), "complete": complete, "first_try": {"rate": rate},
                        "any_of_k": {"rate": rate}, "target_met": rate >= 0.8}}


def test_known_differences_are_counted_cell_by_cell():
    before = results("char_v1", {"a": False, "b": True, "c": True, "d": False, "gone": True})
    after = results("char_v2", {"a": True, "b": False, "c": True, "d": False, "new": True}, distance=0.3)
    data = compare_results(before, after)
    changes = {row["id"]: row["change"] for row in data["cells"]}
    assert changes == {"a": "gained", "b": "lost", "c": "kept", "d": "still failing",
                       "gone": "only in the first", "new": "only in the second"}
    assert (data["gained"], data["lost"], data["net_gain"], data["improved"]) == (1, 1, 0, False)
    assert data["first_try_rate"] == [0.6, 0.6] and data["warnings"] == []
    assert next(r for r in data["cells"] if r["id"] == "c")["identity_distance"] == [0.4, 0.3]


def test_a_net_gain_is_an_improvement():
    data = compare_results(results("char_v1", {"a": False, "b": False}), results("char_v2", {"a": True, "b": True}))
    assert (data["net_gain"], data["improved"], data["target_met"]) == (2, True, [False, True])


def test_runs_that_are_not_like_for_like_are_flagged():
    data = compare_results(results("char_v1", {"a": True}, seeds=(1, 2)),
                           results("char_v2", {"a": True}, seeds=(3, 4, 5), complete=False))
    assert any("different numbers of tries (2 vs 3)" in w for w in data["warnings"])
    assert any("not like-for-like" in w for w in data["warnings"])
    assert any("char_v2) is incomplete" in w for w in data["warnings"])
