"""The pristine review ranks candidates by the gap they fill, shows coverage before/after, and only suggests."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from flenwheel.core.review.items import record_index
from flenwheel.core.review.pick_order import pick_order
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app
from flenwheel.core.review.store import ReviewStore

API = "/flenwheel/review"


def _identity(distance: float) -> dict:
    return {"identity": {"distance": distance, "tolerance": 0.6, "match": distance <= 0.6}}


@pytest.fixture
def candidates(project, picture):
    """Sources covering front/neutral; synthetic v1: a measured duplicate of front/neutral (closest to the
    references), two measured profile-right/angry images and a half-left/sad one known only by its prompt."""
    sources = project.create_dataset("source")
    for i in range(2):
        sources.add_image(picture(900 + i), stem=f"source_{i}", angle="front", expression="neutral",
                          caption=f"photo of {project.subject}")
    synthetic = project.create_dataset("synthetic")
    specs = [("dup", {"view": "front", "expression": "neutral", **_identity(0.30)}, {}),
             ("gap_a", {"view": {"view": "profile-right", "yaw": -75.0}, "expression": "angry", **_identity(0.50)}, {}),
             ("gap_b", {"view": "profile-right", "expression": "angry", **_identity(0.40)}, {}),
             ("intent", _identity(0.35), {"angle": "half-left", "expression": "sad"})]
    with synthetic.edit() as edit:
        for i, (stem, scores, tags) in enumerate(specs):
            edit.add_image(picture(700 + i), stem=stem, prompt=f"photo of {project.subject} {stem}", seed=i,
                           scores=scores, **({"angle": "front", "expression": "neutral"} | tags))
    records = record_index(project.dataset("synthetic", "v1")).records
    return project, {r.prompt.split()[-1]: r for r in records}


def test_a_gap_filling_image_ranks_before_a_duplicate_of_a_covered_cell(candidates):
    project, by_name = candidates
    order = pick_order(project, "v1", list(by_name.values()), {})
    ids = [r.record_id for r in order.ranked]
    names = {r.id: name for name, r in by_name.items()}
    ranked = [names[i] for i in ids]
    assert ranked.index("gap_b") < ranked.index("dup")
    assert ranked[0] == "gap_b", "of two images of the empty cell, the wider identity margin comes first"
    assert ranked.index("gap_a") > ranked.index("intent"), "the second image of a cell is a duplicate by then"
    first = order.ranked[0]
    assert "new cell profile-right/angry" in first.adds and "new view profile-right" in first.adds
    intent = next(r for r in order.ranked if names[r.record_id] == "intent")
    assert not intent.measured and "prompt's intent, not measured" in intent.adds[0]
    assert order.before.views["front"] == 2 and order.before.views["profile-right"] == 0


def test_best_n_is_only_a_suggestion_and_coverage_after_counts_it(candidates):
    project, by_name = candidates
    records = list(by_name.values())
    order = pick_order(project, "v1", records, {}, best=1)
    assert order.suggested == [by_name["gap_b"].id]
    assert order.after.views["profile-right"] == 1 and order.before.views["profile-right"] == 0
    assert ReviewStore(project).current("synthetic", "v1") == {}
    result = CliRunner().invoke(__import__("flenwheel.cli", fromlist=["cli"]).cli,
                                ["review", "order", str(project.root), "--best", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("   1. * gap_b") and "new cell profile-right/angry" in lines[0]
    assert "views before -> after the picks and suggestions" in result.output
    assert "confirm them in the review page (nothing is decided yet)" in result.output


@pytest.mark.asyncio
async def test_the_page_lists_candidates_in_gap_order_with_suggestions(candidates, aiohttp_client):
    project, by_name = candidates
    client = await aiohttp_client(create_app(project, place_delay=0.05))
    base = f"{API}/{project_key(project)}"
    response = await client.get(f"{base}/items", params={"stage": "synthetic", "version": "v1", "best": "2"})
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["items"][0]["id"] == by_name["gap_b"].id
    assert [i["gap"]["suggested"] for i in data["items"]] == [True, True, False, False]
    coverage = data["summary"]["coverage"]
    profile_right, angry = coverage["angles"].index("profile-right"), coverage["expressions"].index("angry")
    assert coverage["training"][profile_right][angry] == 0
    bad = await client.get(f"{base}/items", params={"stage": "synthetic", "version": "v1", "best": "-1"})
    assert bad.status == 400 and "best must be a whole number" in await bad.text()


def test_the_page_suggests_only_and_the_person_confirms(candidates, chromium, live_app):
    project, by_name = candidates
    url = live_app(create_app(project, place_delay=0.2))
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/")
    page.wait_for_selector(".fw-review[data-ready='1']")
    assert page.get_attribute(".fw-tile img", "alt") == by_name["gap_b"].filename, "the best gap-filler first"
    assert "ts 0→0" in page.inner_text(".fw-coverage")
    page.fill(".fw-suggest-count", "2")
    page.click("text=Suggest best")
    page.wait_for_selector(".fw-confirm")
    assert page.locator(".fw-fills.fw-suggested").count() == 2
    assert ReviewStore(project).current("synthetic", "v1") == {}, "a suggestion decides nothing"
    page.click(".fw-confirm")
    page.wait_for_function("() => window.fwReview && window.fwReview.session.inFlight === 0", timeout=10_000)
    decided = ReviewStore(project).current("synthetic", "v1")
    assert {image_id: d.label for image_id, d in decided.items()} == {
        by_name["gap_b"].id: "pristine", by_name["intent"].id: "pristine"}
    assert not errors, errors
