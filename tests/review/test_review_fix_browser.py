"""Picking a corrected target for a needs-correction edit in the review page (headless Chromium)."""

from __future__ import annotations

from flenwheel.core.data.images import load_image, pixel_hash
from flenwheel.core.editor.fix_routes import review_extensions
from flenwheel.core.review.placement import place
from flenwheel.core.review.server import create_app
from flenwheel.core.review.store import ReviewStore

READY = ".fw-review[data-ready='1']"


def test_pick_a_corrected_target_in_the_large_view(enriched, picture, chromium, live_app, tmp_path):
    project, records = enriched(3)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "needs_correction", reason="identity_drift")
    store.decide(records[1].id, "enriched", "v1", "good")
    place(project, "enriched", "v1")
    picture(77, 192).save(tmp_path / "fixed by hand.png")
    picture(78).crop((0, 0, 96, 48)).save(tmp_path / "wide.png")

    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_app(create_app(project, place_delay=0.2, extensions=review_extensions())) + "/")
    page.wait_for_selector(READY)
    page.click(".fw-tile >> nth=1")
    page.keyboard.press("Enter")
    assert page.locator(".fw-fix").count() == 0, "only needs-correction edits take a corrected target"
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector(".fw-fix")
    assert "corrected target none yet" in page.inner_text(".fw-fix")

    page.set_input_files(".fw-fix-input", str(tmp_path / "wide.png"))
    page.wait_for_selector(".fw-message.fw-error")
    assert "(aspect 2.000) but the failed edit" in page.inner_text(".fw-message")

    page.set_input_files(".fw-fix-input", str(tmp_path / "fixed by hand.png"))
    page.wait_for_function("() => document.querySelector('.fw-status').textContent"
                           ".startsWith('corrected target saved')")
    assert "scaled from 192x192 to 96x96" in page.inner_text(".fw-status")
    assert page.is_hidden(".fw-message"), "the earlier error is cleared"
    page.wait_for_function("() => document.querySelectorAll('.fw-figure').length === 3")
    assert page.inner_text(".fw-figure >> nth=2") == "corrected target"
    page.wait_for_function("() => document.querySelector('.fw-figure:nth-child(3) img').naturalWidth === 192")
    stored = project.dataset("enriched", "v1").path / "corrections" / "fixed" / "edit_000.png"
    assert pixel_hash(load_image(stored)) == pixel_hash(picture(77, 192))
    assert "edit_000.png" in page.inner_text(".fw-fix")
    assert not errors


def test_rerun_review_shows_source_failed_edit_and_rerun(enriched, picture, chromium, live_app):
    project, records = enriched(2)
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "needs_correction", reason="artifacts")
    reruns = project.create_dataset("reruns", "v1", info={"enriched_dataset": "enriched/v1"})
    candidate = reruns.add_image(picture(31), stem="edit_000_rerun_9", parents=[records[0].parents[0], records[0].id],
                                 corrects=records[0].id, enriched_dataset="enriched/v1", prompt="cleaner", seed=9)
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    app = create_app(project, place_delay=0.2, extensions=review_extensions())
    page.goto(live_app(app) + "/?stage=rerun&version=v1")
    page.wait_for_selector(READY)
    page.keyboard.press("Enter")
    captions = page.eval_on_selector_all(".fw-figure figcaption", "nodes => nodes.map(n => n.textContent)")
    assert captions == ["source", "failed edit", "re-run"]
    page.keyboard.press("a")
    page.wait_for_function("() => window.fwReview.session.inFlight === 0")
    assert ReviewStore(project).current("rerun", "v1")[candidate.id].label == "accept"
    assert not errors
