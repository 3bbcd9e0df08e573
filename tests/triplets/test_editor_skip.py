"""Too few triplets for an editor LoRA: the graph's editor flywheel passes through, as the headless loop skips.

A fresh project reviewed without corrections (the whole-turn template's test run) reaches the
TripletWriter with nothing to write; the turn must still finish, and every editor node must say why
it did nothing.
"""

from __future__ import annotations

import pytest

import flenwheel
from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.data.handles import DatasetHandle
from flenwheel.core.editor.editor_skip import Skipped, skipped_in, too_few_triplets

NODES = flenwheel.NODE_CLASS_MAPPINGS


def test_the_rule_counts_below_the_minimum_only():
    assert too_few_triplets(9, 10) == Skipped("9 triplets, fewer than 10")
    assert too_few_triplets(10, 10) is None
    assert skipped_in(None, "v1: 12 triplets written", "skipped: 0 triplets, fewer than 10") == Skipped(
        "0 triplets, fewer than 10")
    assert skipped_in(None, "qwen_lora/v1 trained") is None


def test_no_corrections_pass_through_writer_training_and_comparison(corrections):
    case = corrections(4, corrected=0)
    written = NODES["FlenwheelTripletWriter"]().write(case.project, "new", "all", "off", "as_chosen",
                                                       corrections=None, wait_for="model card summary")
    sheet, triplets, jsonl, report = written["result"]
    assert report.startswith("skipped: 0 triplets, fewer than 10")
    assert "no edit is reviewed as needs_correction" in report and written["ui"]["text"] == [report]
    assert isinstance(triplets, Skipped) and jsonl == "" and sheet.shape[0] == 1
    assert not case.project.stage_dir("qwen_training").exists() or not any(
        case.project.stage_dir("qwen_training").iterdir())

    trained = NODES["FlenwheelTrainQwenEditLora"]().train(case.project, "unused/base", "v1", dataset=triplets,
                                                         wait_for=triplets)
    lora, loss_plot, samples, summary = trained["result"]
    assert lora == "" and summary == "skipped: 0 triplets, fewer than 10" and trained["ui"]["text"] == [summary]
    assert loss_plot.shape[0] == 1 and samples.shape[0] == 1
    assert not (case.project.root / "models" / "qwen_lora").exists() or not any(
        (case.project.root / "models" / "qwen_lora").iterdir())

    compared = NODES["FlenwheelCompareEditors"]().compare(case.project, None, "base, ours:latest", "", 1, 0, 2, 1.0,
                                                         64, 64, "off", wait_for=summary)
    assert compared["result"] == ("", "skipped: 0 triplets, fewer than 10")
    assert not (case.project.root / "benchmarks" / "editors").exists()


def test_fewer_than_min_triplets_are_written_but_not_trained_on(corrections, drop_fix, picture):
    case = corrections(4, corrected=3)
    for i in range(3):
        drop_fix(case, f"edit_{i:02d}.png", picture(300 + i))
    writer = NODES["FlenwheelTripletWriter"]()
    _, triplets, jsonl, report = writer.write(case.project, "new", "all", "off", "as_chosen")["result"]
    assert jsonl.endswith("data/qwen_training/v1/triplets.jsonl") and len(open(jsonl).read().splitlines()) == 3
    assert triplets == Skipped("3 triplets, fewer than 10")
    assert "skipped: 3 triplets, fewer than 10: the editor LoRA is not trained" in report
    _, enough, _, report = writer.write(case.project, "new", "all", "off", "as_chosen", min_triplets=3)["result"]
    assert enough.label == "qwen_training/v1" and len(enough) == 3 and "skipped" not in report


def test_compare_editors_holds_back_the_sources_the_triplets_came_from(corrections, drop_fix, picture):
    from flenwheel.core.editor.editor_compare import held_back_sources
    from flenwheel.nodes.editor_compare_node import _held_back

    case = corrections(4, corrected=1)
    drop_fix(case, "edit_00.png", picture(400))
    _, triplets, _, _ = NODES["FlenwheelTripletWriter"]().write(case.project, "new", "all", "off", "as_chosen",
                                                                min_triplets=1)["result"]
    source, note = held_back_sources(case.project, triplets.dataset.version, 4)
    assert set(source.ids) == {case.sources[1].id, case.sources[2].id} and note == "held back from the triplets"
    assert held_back_sources(case.project, triplets.dataset.version, 1)[0].ids == (case.sources[1].id,)
    assert _held_back(case.project, triplets, 4)[1] == ["2 sources held back from the triplets"]
    assert _held_back(case.project, None, 4) == (None, [])
    with pytest.raises(FlenwheelError, match="triplets must come from a Triplet Writer, not enriched/v1"):
        _held_back(case.project, DatasetHandle(case.enriched), 4)


def test_held_back_sources_leave_out_the_second_control_too(corrections, picture):
    """A triplet trained on two sources (``control_path_1``) saw both: neither may judge the new editor."""
    import json

    from flenwheel.core.editor.editor_compare import held_back_sources

    case = corrections(3, corrected=0)
    folder = case.project.stage_dir("qwen_training") / "v1"
    (folder / "control").mkdir(parents=True)
    copy = folder / "control" / "second.png"
    sources = case.project.dataset("source")
    picture_of = {r.id: sources.image_path(r) for r in sources.records}
    copy.write_bytes(picture_of[case.sources[1].id].read_bytes())
    lines = [
        # lineage names only the first source; the second view is given by its file alone (hand-written)
        {"image_path": "target/a.png", "caption": "fix", "control_path": "control/a.png",
         "control_path_1": "control/second.png", "source_id": case.sources[0].id},
    ]
    (folder / "triplets.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    held, note = held_back_sources(case.project, "v1", 4)
    assert held.ids == (case.sources[2].id,) and note == "held back from the triplets"

    # a line with lineage ids: reference_id (the writer's id for control_path_1) counts as used as well
    lines = [{"image_path": "target/a.png", "caption": "fix", "control_path": "control/missing.png",
              "control_path_1": "control_1/missing.png", "source_id": case.sources[2].id,
              "reference_id": case.sources[0].id}]
    (folder / "triplets.jsonl").write_text(json.dumps(lines[0]) + "\n", encoding="utf-8")
    assert held_back_sources(case.project, "v1", 4)[0].ids == (case.sources[1].id,)
