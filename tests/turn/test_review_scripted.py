"""Scripted reviews: a person's decisions file, and the demo-only auto-review that says what it is."""

from __future__ import annotations

import pytest

from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.review.gate import scope_for
from flenwheel.core.review.scripted import apply_decisions, auto_review, auto_verdict, read_decisions
from flenwheel.core.review.stages import AUTO_REVIEWER
from flenwheel.core.review.store import ReviewStore
from flenwheel.core.review.summary import summarize


@pytest.fixture
def enriched(project, noise_image):
    dataset = project.create_dataset("enriched")
    for index in range(7):
        dataset.add_image(noise_image((64, 64), seed=index), stem=f"edit{index}", prompt="new background")
    return dataset


def test_decisions_file_by_name_and_id_prefix(project, enriched, tmp_path):
    first, second = enriched.records[:2]
    path = tmp_path / "decisions.yaml"
    path.write_text(
        "enriched:\n  latest:\n"
        f"    {first.filename}: good\n"
        f"    {second.id[:10]}: {{label: needs_correction, reason: identity_drift}}\n"
        "    nobody.png: reject\n"
    )
    report = apply_decisions(scope_for(project, "enriched"), read_decisions(path))
    assert report.decided == 2 and report.unknown == ["nobody.png"]
    current = ReviewStore(project).current("enriched", "v1")
    assert current[first.id].label == "good" and current[first.id].reviewer == "decisions file"
    assert (current[second.id].label, current[second.id].reason) == ("needs_correction", "identity_drift")


def test_a_decision_missing_its_reason_is_refused(project, enriched):
    record = enriched.records[0]
    with pytest.raises(FlenwheelError, match="reason"):
        apply_decisions(scope_for(project, "enriched"), {"enriched": {"v1": {record.filename: "reject"}}})


def test_unreadable_decisions_files_are_named(tmp_path):
    with pytest.raises(FlenwheelError, match="does not exist"):
        read_decisions(tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- good\n")
    with pytest.raises(FlenwheelError, match="must map review stages"):
        read_decisions(tmp_path / "list.yaml")


def test_auto_verdict_follows_a_measured_identity(project, enriched):
    record = enriched.records[0]
    record.scores["identity"] = {"face_count": 1, "match": True}
    assert auto_verdict("enriched", record, 4) == ("good", None)
    record.scores["identity"] = {"face_count": 1, "match": False}
    assert auto_verdict("enriched", record, 0) == ("needs_correction", "identity_drift")
    assert auto_verdict("synthetic", record, 0) == ("reject", "identity_drift")


def test_auto_review_decides_everything_and_the_summary_says_no_human_did(project, enriched):
    report = auto_review(scope_for(project, "enriched"))
    assert report.decided == 7
    decisions = ReviewStore(project).current("enriched", "v1").values()
    assert {d.reviewer for d in decisions} == {AUTO_REVIEWER}
    assert {d.label for d in decisions} == {"good", "needs_correction", "reject"}
    summary = summarize(project, "enriched", "v1")
    assert summary.auto_decided == 7
    assert any("made by --auto-review" in line and "not a human" in line for line in summary.lines())
