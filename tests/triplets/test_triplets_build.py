"""TripletWriter: triplets built from review decisions, both target sources, the JSONL schema, the report."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.data.images import load_image, pixel_hash
from flenwheel.core.editor.correction_rerun import review_rerun
from flenwheel.core.editor.triplet_check import validate_triplets
from flenwheel.core.editor.triplets import build_triplets
from flenwheel.core.review.store import ReviewStore


def _add_rerun(case, failed, image, prompt, train_on="original", seed=77):
    """A re-run candidate as correction_rerun writes it (without running a model)."""
    project = case.project
    if not project.versions("reruns"):
        project.create_dataset("reruns", "v1", info={"enriched_dataset": "enriched/v1"})
    return project.dataset("reruns", "v1").add_image(
        image, stem=f"rerun_{seed}", parents=[failed.parents[0], failed.id], corrects=failed.id, prompt=prompt,
        seed=seed, train_on=train_on, original_prompt=failed.prompt)


def test_builds_triplets_from_manual_fixes_and_accepted_reruns(corrections, drop_fix, picture):
    case = corrections(12, corrected=11)
    project, records = case.project, case.records
    for i in range(9):                                            # by file name, as PNG or JPEG
        drop_fix(case, f"edit_{i:02d}{'.png' if i % 2 else '.jpg'}", picture(500 + i))
    drop_fix(case, f"{records[9].id[:12]}.png", picture(509))     # by id prefix
    improved = _add_rerun(case, records[10], picture(510), "Replace the background, keep the face.",
                          train_on="improved")
    review_rerun(project, "v1", improved.id)
    assert len(case.enriched.verify().extra) == 10, "files dropped in by hand are not in the manifest yet"

    result = build_triplets(project, identity="off")
    assert case.enriched.verify().ok, "the build adopts the fixes it used into the enriched manifest"
    assert result.dataset.label == "qwen_training/v1" and len(result.lines) == 11
    assert result.dataset.finished and result.dataset.verify().ok
    lines = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    assert lines == result.lines
    first = lines[0]
    assert {"image_path", "control_path", "caption", "issue", "improvement", "source_id", "failed_edit_id",
            "target_id", "enriched_dataset"} <= set(first)
    assert first["image_path"] == "target/v1_edit_00.png" and first["control_path"] == "control/v1_edit_00.png"
    assert "control_path_1" not in first
    base = result.jsonl.parent
    assert pixel_hash(load_image(base / first["control_path"])) == records[0].parents[0] == first["source_id"]
    assert first["failed_edit_id"] == records[0].id and first["enriched_dataset"] == "enriched/v1"
    assert first["caption"] == records[0].prompt and first["issue"] == "identity_drift"
    assert first["improvement"] == "fixed by hand: identity drift" and first["target_source"] == "manual"
    jpeg_target = pixel_hash(load_image(case.enriched.path / "corrections/fixed/edit_00.jpg"))
    assert pixel_hash(load_image(base / first["image_path"])) == first["target_id"] == jpeg_target
    assert (base / "target/v1_edit_00.txt").read_text().strip() == records[0].prompt
    free_text = lines[3]
    assert free_text["issue"] == "eyes changed colour" and free_text["issue_text"] == "eyes changed colour"

    rerun = lines[10]
    assert rerun["target_source"] == "rerun" and rerun["caption"] == "Replace the background, keep the face."
    assert rerun["caption_source"] == "improved" and rerun["original_prompt"] == records[10].prompt
    assert rerun["target_id"] == improved.id and rerun["target_from"] == f"reruns/v1/{improved.filename}"
    assert result.waiting == [] and result.skipped == []
    assert validate_triplets(result.jsonl).ok

    forced = build_triplets(project, identity="off", caption="original")
    assert forced.dataset.label == "qwen_training/v2"
    assert forced.lines[10]["caption"] == records[10].prompt

    target = project.dataset("qwen_training", "v1").record(first["target_id"])
    assert target.parents == [first["source_id"], first["failed_edit_id"]] and target.label is None


def test_report_criteria_and_sheet(corrections, drop_fix, picture):
    case = corrections(4)
    for i in range(3):
        drop_fix(case, f"edit_{i:02d}.png", picture(700 + i))
    almost = load_image(case.enriched.path / case.records[3].filename).point(lambda v: min(255, v + 2))
    drop_fix(case, "edit_03.png", almost)
    result = build_triplets(case.project, identity="auto")
    text = "\n".join(result.summary())
    assert "FAIL 10+ triplets: 4 triplets" in text
    assert "FAIL before and after clearly different" in text and "within 2% of the failed edit: v1_edit_03" in text
    assert "---- corrections show the wanted behaviour (identity): not measured: no reference image has a " \
           "usable face" in text
    report = json.loads((result.dataset.path / "report.json").read_text())
    assert report["count"] == 4 and report["triplets"][3]["pixel"] < 0.02 < report["triplets"][0]["pixel"]
    sheet = Image.open(result.dataset.path / "sheet.png")
    assert sheet.width > 3 * 256 and sheet.height > 4 * 256


def test_a_rebuild_with_nothing_new_writes_nothing_and_an_interrupted_build_is_redone(corrections, drop_fix,
                                                                                        picture, monkeypatch):
    case = corrections(3)
    for i in range(3):
        drop_fix(case, f"edit_{i:02d}.png", picture(800 + i))
    first = build_triplets(case.project, identity="off")
    again = build_triplets(case.project, identity="off")
    assert again.up_to_date and again.dataset.label == first.dataset.label and len(again.lines) == 3
    assert "already holds these 3 triplets" in again.summary()[0]
    assert case.project.versions("qwen_training") == ["v1"]

    drop_fix(case, "edit_00.png", picture(900))
    import flenwheel.core.editor.triplets as triplets

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(triplets, "validate_triplets", crash)
    monkeypatch.setattr(triplets.DatasetVersion, "finish", crash)
    with pytest.raises(RuntimeError):
        build_triplets(case.project, identity="off")
    assert not case.project.dataset("qwen_training", "v2").finished
    monkeypatch.undo()
    redone = build_triplets(case.project, identity="off")
    assert redone.dataset.label == "qwen_training/v2" and redone.dataset.finished and redone.dataset.verify().ok
    drop_fix(case, "edit_01.png", picture(901))
    with pytest.raises(FlenwheelError, match="qwen_training/v1 is finished"):
        build_triplets(case.project, version="v1", identity="off")
    assert first.dataset.verify().ok


def test_problems_leave_corrections_out_with_clear_reasons(corrections, drop_fix, picture):
    case = corrections(8, corrected=7)
    project, records = case.project, case.records
    drop_fix(case, "edit_00.png", picture(600, (96, 64)))                       # wrong aspect
    drop_fix(case, "edit_01.png", picture(601, (128, 128)))                     # same aspect: scaled
    drop_fix(case, "edit_02.png", load_image(case.enriched.path / records[2].filename))   # the failed edit
    source = project.dataset("source").record(records[3].parents[0])
    drop_fix(case, "edit_03.png", load_image(project.dataset("source").image_path(source)))   # the source
    drop_fix(case, "edit_04.png", picture(604))
    drop_fix(case, "edit_04.webp", picture(614))                                # two fixes for one edit
    (case.enriched.path / "corrections/fixed/edit_05.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    drop_fix(case, "edit_07.png", picture(607))                                 # a good edit: ignored
    drop_fix(case, "holiday.png", picture(608))                                 # matches nothing

    result = build_triplets(project, identity="off")
    assert [line["failed_edit_id"] for line in result.lines] == [records[1].id]
    skipped = "\n".join(result.skipped)
    assert "edit_00.png is 96x64 (aspect 1.500) but the failed edit edit_00.png is 64x64 (aspect 1.000)" in skipped
    assert "is the failed edit itself" in skipped and "is the source image" in skipped
    assert "it has 2 fixes (edit_04.png, edit_04.webp); keep one" in skipped
    assert "fixed/edit_05.png: not an image Pillow can read" in skipped
    assert result.waiting == ["enriched/v1/corrections/edit_06.png (no target yet)"]
    notes = "\n".join(result.notes)
    assert "scaled from 128x128 to 64x64" in notes
    assert "edit_07.png ignored: good/edit_07.png is 'good', not needs_correction" in notes
    assert "holiday.png matches no image of enriched/v1" in notes
    assert load_image(result.jsonl.parent / result.lines[0]["image_path"]).size == (64, 64)


def test_nothing_to_write_is_an_error_that_says_what_to_do(corrections):
    case = corrections(3)
    with pytest.raises(FlenwheelError, match="no triplets to write: .*no target yet.*corrections/fixed"):
        build_triplets(case.project)
    assert case.project.versions("qwen_training") == []


def test_identity_report_with_real_faces(project, faces):
    """A failed edit that drifted to another person, corrected back: the target is measurably closer."""
    from flenwheel.core.data.images import png_bytes
    from flenwheel.core.editor.correction_targets import store_fix
    from flenwheel.core.review.placement import place

    def square(path, side=320):
        image = load_image(path)
        edge = min(image.size)
        left, top = (image.width - edge) // 2, (image.height - edge) // 4
        return image.crop((left, top, left + edge, top + edge)).resize((side, side))

    sources = project.create_dataset("source")
    own = [sources.add_image(square(faces / "obama" / name), stem=name) for name in ("obama2.jpg", "obama4.jpg")]
    enriched = project.create_dataset("enriched")
    failed = enriched.add_image(square(faces / "biden" / "biden2.jpg"), stem="drifted", parents=[own[0].id],
                                prompt="Replace the background with a beach. Keep the person identical.")
    ReviewStore(project).decide(failed.id, "enriched", "v1", "needs_correction", reason="identity_drift")
    place(project, "enriched", "v1")
    store_fix(project, "v1", failed.id, png_bytes(square(faces / "obama" / "obama.jpg")))
    result = build_triplets(project, identity="on")
    check = result.report.checks[-1]
    assert check.passed is True and "1/1 (1/1 identity-drift corrections)" in check.detail
    target, before = result.report.measures[0].distances
    assert target < 0.6 < before
