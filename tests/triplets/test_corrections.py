"""Where corrected targets come from: stored fixes, and improved-prompt re-runs on the tiny Qwen-Edit model."""

from __future__ import annotations

import pytest

from flenwheel.core.data.images import load_image, pixel_hash, png_bytes
from flenwheel.core.editor.correction_rerun import improve_prompt, rerun_correction, review_rerun
from flenwheel.core.editor.correction_targets import CorrectionError, correction_items, find_record, store_fix
from flenwheel.core.editor.triplets import build_triplets
from flenwheel.core.review.store import ReviewStore

FAST = {"steps": 2, "true_cfg": 1.0, "vae_pixels": 4096, "condition_pixels": 3136}


def test_store_fix_keeps_earlier_fixes_and_checks_the_picture(corrections, picture):
    case = corrections(3, corrected=2)
    project, records = case.project, case.records
    stored = store_fix(project, "v1", records[0].id, png_bytes(picture(40, (128, 128))))
    assert stored.relative == "corrections/fixed/edit_00.png" and stored.note and "scaled from 128x128" in stored.note
    assert pixel_hash(load_image(case.enriched.path / stored.relative)) == pixel_hash(picture(40, (128, 128)))
    again = store_fix(project, "v1", records[0].id, png_bytes(picture(41)))
    assert again.replaced == ["corrections/fixed/edit_00.png"] and again.note is None
    kept = list((case.enriched.path / "corrections/fixed/.replaced").iterdir())
    assert len(kept) == 1 and pixel_hash(load_image(kept[0])) == pixel_hash(picture(40, (128, 128)))
    assert case.enriched.verify().ok, "uploads go through the dataset's manifest"
    items, _ = correction_items(project, "v1")
    assert [item.target_state for item in items] == ["manual fix", "no target yet"]

    with pytest.raises(CorrectionError, match="good/edit_02.png is good; only edits reviewed as needs_correction"):
        store_fix(project, "v1", records[2].id, png_bytes(picture(42)))
    with pytest.raises(CorrectionError, match=r"is 80x64 \(aspect 1.250\) but the failed edit"):
        store_fix(project, "v1", records[1].id, png_bytes(picture(43, (80, 64))))
    with pytest.raises(CorrectionError, match="the failed edit itself"):
        store_fix(project, "v1", records[1].id, (case.enriched.path / records[1].filename))
    with pytest.raises(CorrectionError, match="the picked image cannot be read: not an image Pillow can read"):
        store_fix(project, "v1", records[1].id, b"<html>nope</html>")
    assert not (case.enriched.path / "corrections/fixed/edit_01.png").exists()


def test_find_record_by_id_prefix_or_name(corrections):
    case = corrections(3)
    dataset, record = case.enriched, case.records[1]
    assert find_record(dataset, record.id).id == record.id
    assert find_record(dataset, record.id[:10]).id == record.id
    assert find_record(dataset, "edit_01.png").id == record.id
    assert find_record(dataset, "corrections/edit_01").id == record.id
    with pytest.raises(CorrectionError, match="no image 'edit_99' in enriched/v1"):
        find_record(dataset, "edit_99")


def test_improve_prompt():
    original = "Replace the background with a beach."
    assert improve_prompt(original, "identity_drift").startswith(original + " The face must stay exactly")
    assert improve_prompt(original, "my own words") == original
    assert improve_prompt(original, "artifacts", "{prompt} Sharper sand.") == original + " Sharper sand."
    assert improve_prompt(original, "artifacts", "A whole new prompt") == "A whole new prompt"


@pytest.fixture
def enriched_by_model(project, picture, tiny_qwen_edit):
    """3 sources enriched 2 ways each by the tiny model; the first 3 edits need correction."""
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.enrich.enrich import EnrichSettings, enrich
    from flenwheel.core.models.pipelines import LoadOptions
    from flenwheel.core.models.qwen_edit_loader import load_qwen_edit
    from flenwheel.core.review.placement import place

    for i in range(3):
        add_sources(project, images=[(f"src{i}", picture(i))], angle="front")
    handle = load_qwen_edit(str(tiny_qwen_edit), options=LoadOptions(dtype="fp32", device="cpu"))
    settings = EnrichSettings(per_source=2, width=64, height=64, **FAST)
    records = enrich(project, handle, settings).dataset.records
    store = ReviewStore(project)
    for i, record in enumerate(records):
        store.decide(record.id, "enriched", "v1", "needs_correction" if i < 3 else "good",
                     reason="identity_drift" if i < 3 else None)
    place(project, "enriched", "v1")
    return project, handle, records


def test_rerun_repeats_the_edit_exactly_and_the_accepted_one_becomes_the_target(enriched_by_model):
    project, handle, records = enriched_by_model
    failed = records[0]
    same = rerun_correction(project, handle, "v1", failed.id[:12], prompt="{prompt}", seeds=[failed.seed])
    assert same.added[0][0].id == failed.id, "the recorded settings and seed reproduce the failed edit"

    result = rerun_correction(project, handle, "v1", failed.id, seeds=2, train_on="improved")
    assert result.dataset.label == "reruns/v1" and len(result.added) == 2
    assert "The face must stay exactly the person in Picture 1" in result.prompt
    candidate, image = result.added[0]
    assert candidate.parents == [failed.parents[0], failed.id] and candidate.corrects == failed.id
    assert candidate.original_prompt == failed.prompt and candidate.prompt == result.prompt
    assert candidate.train_on == "improved" and candidate.issue == "identity_drift"
    assert (candidate.width, candidate.height, candidate.steps) == (failed.width, failed.height, 2)
    assert candidate.seed not in (failed.seed, same.added[0][0].seed)
    more = rerun_correction(project, handle, "v1", failed.id, seeds=1)
    assert more.added[0][0].seed not in {c.seed for c, _ in result.added}, "every call tries new seeds"

    items = {item.record.id: item for item in correction_items(project, "v1")[0]}
    assert items[failed.id].target_state == "re-runs to review" and items[failed.id].pending_reruns == 4
    review_rerun(project, "v1", same.added[0][0].filename, accept=False)
    review_rerun(project, "v1", candidate.id[:12])
    assert project.dataset("reruns", "v1").record(candidate.id).label == "accept"
    built = build_triplets(project, identity="off")
    line = built.lines[0]
    assert line["target_id"] == candidate.id and line["caption"] == result.prompt
    assert line["target_source"] == "rerun" and line["rerun_seed"] == candidate.seed
    assert f"seed {candidate.seed}" in line["improvement"]
    assert len(built.waiting) == 2 and all(w.endswith("(no target yet)") for w in built.waiting)


def test_rerun_refuses_what_is_not_a_correction(enriched_by_model):
    project, handle, records = enriched_by_model
    with pytest.raises(CorrectionError, match="is good; only edits reviewed as needs_correction are re-run"):
        rerun_correction(project, handle, "v1", records[4].id, seeds=1)
    with pytest.raises(CorrectionError, match="train_on must be original or improved"):
        rerun_correction(project, handle, "v1", records[0].id, train_on="both")
    with pytest.raises(CorrectionError, match="there are no re-runs for enriched/v1 yet"):
        review_rerun(project, "v1", "abc")
