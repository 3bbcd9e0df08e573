"""Placement: folders and records follow the decisions, repeatably, and survive crashes mid-move."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from flenwheel.core.data import dataset as dataset_module
from flenwheel.core.data.errors import DatasetError
from flenwheel.core.review.placement import place
from flenwheel.core.review.store import ReviewStore


def _files(dataset) -> list[str]:
    return sorted(p.relative_to(dataset.path).as_posix() for p in dataset.path.rglob("*.png"))


def _by_id(dataset) -> dict:
    return {record.id: record for record in dataset.records}


PLACED = ["corrections/edit_001.png", "edit_003.png", "edit_004.png", "good/edit_000.png",
          "rejected/edit_002.png"]


def test_enriched_placement_moves_files_and_labels_records(enriched):
    project, records = enriched(5)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good", reviewer="ana")
    store.decide(records[1].id, "enriched", "v1", "needs_correction", reason="wrong edit or anatomy")
    store.decide(records[2].id, "enriched", "v1", "reject", reason="artifacts", note="blotchy sky")

    report = place(project, "enriched", "v1")
    dataset = project.dataset("enriched", "v1")
    assert len(report.moved) == 3 and not report.problems
    assert _files(dataset) == PLACED
    placed = _by_id(dataset)
    assert placed[records[0].id].label == "good" and placed[records[0].id].reviewer == "ana"
    correction = placed[records[1].id]
    assert (correction.label, correction.reason) == ("needs_correction", "wrong_edit_or_anatomy")
    assert placed[records[2].id].review_note == "blotchy sky"
    assert placed[records[3].id].label is None
    assert dataset.verify().ok

    again = place(project, "enriched", "v1")
    assert not again.changed
    assert _files(dataset) == PLACED


def test_a_changed_or_undone_decision_moves_the_file_back_out(enriched):
    project, records = enriched(2)
    store = ReviewStore(project)
    image = records[0].id
    store.decide(image, "enriched", "v1", "good")
    place(project, "enriched", "v1")
    store.decide(image, "enriched", "v1", "reject", reason="identity drift")
    place(project, "enriched", "v1")
    dataset = project.dataset("enriched", "v1")
    assert _by_id(dataset)[image].filename == "rejected/edit_000.png"
    assert not (dataset.path / "good" / "edit_000.png").exists()

    store.undo("enriched", "v1")
    store.undo("enriched", "v1")
    place(project, "enriched", "v1")
    record = _by_id(dataset)[image]
    assert (record.filename, record.label, record.reason) == ("edit_000.png", None, None)
    assert _files(dataset) == ["edit_000.png", "edit_001.png"]
    assert dataset.verify().ok


def test_crash_between_copy_and_delete_is_repaired_by_the_next_run(enriched, monkeypatch):
    project, records = enriched(3)
    store = ReviewStore(project)
    for record in records:
        store.decide(record.id, "enriched", "v1", "good")
    real_copy = dataset_module.atomic_copy
    copies = []

    def copy_then_crash(source, target):
        real_copy(source, target)
        copies.append(target)
        if len(copies) == 2:
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(dataset_module, "atomic_copy", copy_then_crash)
    with pytest.raises(KeyboardInterrupt):
        place(project, "enriched", "v1")
    dataset = project.dataset("enriched", "v1")
    assert [r.filename for r in dataset.records] == ["edit_000.png", "edit_001.png", "edit_002.png"]
    assert (dataset.path / "edit_001.png").exists() and (dataset.path / "good" / "edit_001.png").exists()

    monkeypatch.setattr(dataset_module, "atomic_copy", real_copy)
    report = place(project, "enriched", "v1")
    assert len(report.moved) == 3 and len(report.repaired) == 2
    assert _files(dataset) == ["good/edit_000.png", "good/edit_001.png", "good/edit_002.png"]
    assert dataset.verify().ok
    assert not place(project, "enriched", "v1").changed


CRASH = {
    "after_copy": """
        real = dataset.atomic_copy
        def hook(source, target):
            real(source, target)
            os._exit(9)
        dataset.atomic_copy = hook
    """,
    "after_delete": """
        real = Path.unlink
        def hook(self, *args, **kwargs):
            real(self, *args, **kwargs)
            if self.suffix == ".png":
                os._exit(9)
        Path.unlink = hook
    """,
}


@pytest.mark.parametrize("moment", sorted(CRASH))
def test_kill_9_in_the_middle_of_a_move_is_repaired(enriched, moment):
    project, records = enriched(3)
    store = ReviewStore(project)
    store.decide(records[1].id, "enriched", "v1", "reject", reason="artifacts")
    script = textwrap.dedent("""
        import os
        from pathlib import Path
        from flenwheel.core.data import dataset
        from flenwheel.core.data.project import Project
        from flenwheel.core.review.placement import place
    """) + textwrap.dedent(CRASH[moment]) + textwrap.dedent(f"""
        place(Project.open({str(project.root)!r}), "enriched", "v1")
    """)
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert crashed.returncode == 9, crashed.stderr
    dataset = project.dataset("enriched", "v1")
    assert _by_id(dataset)[records[1].id].filename == "edit_001.png"
    assert (dataset.path / "rejected" / "edit_001.png").exists()
    assert (dataset.path / "edit_001.png").exists() == (moment == "after_copy")

    report = place(project, "enriched", "v1")
    assert report.repaired and not report.problems
    record = _by_id(dataset)[records[1].id]
    assert (record.filename, record.label) == ("rejected/edit_001.png", "reject")
    assert _files(dataset) == ["edit_000.png", "edit_002.png", "rejected/edit_001.png"]
    assert dataset.verify().ok


def test_leftover_temp_files_of_a_killed_copy_are_cleared(enriched):
    project, records = enriched(1)
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "good")
    dataset = project.dataset("enriched", "v1")
    (dataset.path / "good").mkdir()
    stale = dataset.path / "good" / ".edit_000.png.abc_1234.tmp"  # the shape atomic writes leave (8 chars)
    stale.write_bytes(b"half a png")
    place(project, "enriched", "v1")
    assert not stale.exists() and dataset.verify().ok


def test_a_missing_file_is_reported_not_fatal(enriched):
    project, records = enriched(2)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good")
    store.decide(records[1].id, "enriched", "v1", "good")
    dataset = project.dataset("enriched", "v1")
    (dataset.path / "edit_000.png").unlink()
    report = place(project, "enriched", "v1")
    assert len(report.moved) == 1 and "edit_000.png is missing" in report.problems[0]
    assert (dataset.path / "good" / "edit_001.png").exists()


def test_a_name_taken_by_a_foreign_file_gets_the_id_suffix(enriched, picture):
    project, records = enriched(1)
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "good")
    dataset = project.dataset("enriched", "v1")
    (dataset.path / "good").mkdir()
    picture(999).save(dataset.path / "good" / "edit_000.png")
    place(project, "enriched", "v1")
    assert _by_id(dataset)[records[0].id].filename == f"good/edit_000_{records[0].id[:8]}.png"


def test_pristine_picks_become_their_own_dataset_with_lineage(synthetic):
    project, records = synthetic(4)
    store = ReviewStore(project)
    store.decide(records[0].id, "synthetic", "v1", "pristine", note="fills gap")
    store.decide(records[1].id, "synthetic", "v1", "pristine")
    store.decide(records[2].id, "synthetic", "v1", "reject", reason="identity drift")

    report = place(project, "synthetic", "v1")
    assert sorted(report.added) == ["gen_000.png", "gen_001.png"]
    pristine = project.dataset("pristine", "v1")
    picked = _by_id(pristine)
    assert set(picked) == {records[0].id, records[1].id}
    first = picked[records[0].id]
    assert first.parents == [records[0].id] and first.stage == "pristine"
    assert (first.prompt, first.seed, first.angle) == (records[0].prompt, 0, records[0].angle)
    assert (first.label, first.review_note, first.source_dataset) == ("pristine", "fills gap", "synthetic/v1")
    assert pristine.load().info["source"] == "synthetic/v1" and pristine.verify().ok
    synthetic_records = _by_id(project.dataset("synthetic", "v1"))
    assert synthetic_records[records[2].id].label == "reject"
    assert _files(project.dataset("synthetic", "v1")) == [f"gen_{i:03d}.png" for i in range(4)]
    assert not place(project, "synthetic", "v1").changed

    store.decide(records[1].id, "synthetic", "v1", "reject", reason="artifacts")
    again = place(project, "synthetic", "v1")
    assert again.removed == ["gen_001.png"]
    assert set(_by_id(pristine)) == {records[0].id} and _files(pristine) == ["gen_000.png"]
    assert pristine.verify().ok


def test_a_pristine_copy_cut_short_is_adopted(synthetic, monkeypatch):
    project, records = synthetic(2)
    ReviewStore(project).decide(records[0].id, "synthetic", "v1", "pristine")
    real_copy = dataset_module.atomic_copy

    def copy_then_crash(source, target):
        real_copy(source, target)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(dataset_module, "atomic_copy", copy_then_crash)
    with pytest.raises(KeyboardInterrupt):
        place(project, "synthetic", "v1")
    monkeypatch.setattr(dataset_module, "atomic_copy", real_copy)
    report = place(project, "synthetic", "v1")
    pristine = project.dataset("pristine", "v1")
    assert report.added == ["gen_000.png"] and report.repaired
    assert _files(pristine) == ["gen_000.png"] and pristine.verify().ok


def test_a_finished_pristine_set_refuses_changes(synthetic):
    project, records = synthetic(2)
    store = ReviewStore(project)
    store.decide(records[0].id, "synthetic", "v1", "pristine")
    place(project, "synthetic", "v1")
    project.dataset("pristine", "v1").finish()
    store.decide(records[1].id, "synthetic", "v1", "pristine")
    with pytest.raises(DatasetError, match="finished"):
        place(project, "synthetic", "v1")


def test_benchmark_verdicts_only_label_records(project, picture):
    dataset = project.create_dataset("benchmark")
    record = dataset.add_image(picture(7), stem="card_front_smiling")
    ReviewStore(project).decide(record.id, "benchmark", "v1", "incorrect", reason="wrong angle")
    report = place(project, "benchmark", "v1")
    placed = project.dataset("benchmark", "v1").record(record.id)
    assert (report.relabelled, placed.label, placed.filename) == (1, "incorrect", "card_front_smiling.png")
    assert placed.reason == "wrong angle"
