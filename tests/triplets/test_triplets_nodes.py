"""The Flywheel 2 nodes, as ComfyUI calls them (no ComfyUI needed): thin wrappers over the engine."""

from __future__ import annotations

import pytest

import flenwheel
from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.data.handles import DatasetHandle
from flenwheel.core.review.store import ReviewStore
from flenwheel.core.testing.tiny_lora import make_tiny_lora

NODES = flenwheel.NODE_CLASS_MAPPINGS


def test_triplet_writer_node(corrections, drop_fix, picture):
    case = corrections(4, corrected=3)
    for i in range(3):
        drop_fix(case, f"edit_{i:02d}.png", picture(200 + i))
    writer = NODES["FlenwheelTripletWriter"]()
    result = writer.write(case.project, "new", "all", "off", "as_chosen", min_triplets=3)
    sheet, handle, jsonl, report = result["result"]
    assert sheet.shape[0] == 1 and sheet.shape[3] == 3 and sheet.shape[2] > 3 * 256
    assert handle.label == "qwen_training/v1" and len(handle) == 3
    assert jsonl.endswith("data/qwen_training/v1/triplets.jsonl")
    assert "qwen_training/v1: 3 triplets written" in report and result["ui"]["text"] == [report]

    corrections_only = DatasetHandle(case.enriched).subset([case.records[0].id])
    again = writer.write(case.project, "new", "v7", "off", "as_chosen", corrections=corrections_only,
                         min_triplets=3)
    assert "already holds these 3 triplets" in again["result"][3]
    with pytest.raises(FlenwheelError, match="is not an enriched dataset or its re-runs"):
        writer.write(case.project, "new", "all", "off", "as_chosen", corrections=handle)
    assert NODES["FlenwheelTripletWriter"].IS_CHANGED() != NODES["FlenwheelTripletWriter"].IS_CHANGED()


@pytest.fixture
def loaded(tiny_qwen_edit):
    from flenwheel.core.models.pipelines import LoadOptions
    from flenwheel.core.models.qwen_edit_loader import load_qwen_edit

    return load_qwen_edit(str(tiny_qwen_edit), options=LoadOptions(dtype="fp32", device="cpu"))


def test_rerun_compare_and_report_nodes(project, picture, loaded, tiny_qwen_edit):
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.enrich.enrich import EnrichSettings, enrich
    from flenwheel.core.review.placement import place

    for i in range(2):
        add_sources(project, images=[(f"src{i}", picture(i))], angle="front")
    fast = {"steps": 2, "true_cfg": 1.0, "vae_pixels": 4096, "condition_pixels": 3136, "width": 64, "height": 64}
    records = enrich(project, loaded, EnrichSettings(per_source=1, **fast)).dataset.records
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "needs_correction", reason="artifacts")
    store.decide(records[1].id, "enriched", "v1", "good")
    place(project, "enriched", "v1")

    rerun = NODES["FlenwheelCorrectionRerun"]()
    images, handle, summary = rerun.rerun(project, loaded, "all", "", 2, "original", "off", "latest")
    assert images.shape[0] == 2 and handle.label == "reruns/v1" and len(handle) == 2
    assert "Clean, natural result with no artifacts" in summary
    with pytest.raises(FlenwheelError, match="no image 'nope'"):
        rerun.rerun(project, loaded, "nope", "", 1, "original", "off", "v1")
    store.decide(handle.ids[1], "rerun", "v1", "accept")
    store.decide(handle.ids[0], "rerun", "v1", "reject")
    gate = NODES["FlenwheelReviewGate"]().review(project, "rerun", "pass_through", 0, "fail", dataset=handle)
    accepted = gate["result"][1]
    assert accepted.ids == (handle.ids[1],)
    written = NODES["FlenwheelTripletWriter"]().write(project, "new", "all", "off", "as_chosen",
                                                       accepted_reruns=accepted, min_triplets=1)["result"]
    assert written[1].records()[0].id == handle.ids[1] and "1 triplets written" in written[3]

    make_tiny_lora(tiny_qwen_edit, project.qwen_lora_dir("v1") / "qwen_char_lora_v1.safetensors")
    compare = NODES["FlenwheelCompareEditors"]()
    out = compare.compare(project, loaded, "base,\nours:v1", "", 1, 0, 2, 1.0, 64, 64, "off",
                          condition_pixels=3136, vae_pixels=4096)
    name, text = out["result"]
    assert name == "v1" and "base: enriched/v2" in text and "ours:v1: enriched/v3" in text
    for version in ("v2", "v3"):
        for record in project.dataset("enriched", version).records:
            store.decide(record.id, "enriched", version, "good" if version == "v3" else "reject", reason="artifacts")
    chart, table, report = NODES["FlenwheelEditorReport"]().report(project, "latest", "auto")["result"]
    assert chart.shape[1:] == (480, 1200, 3)
    assert "| ours:v1 | v3 | 2 | 2 | 100% | 0% | 0% | not measured | - |" in table
    assert "---- ours:v1 keeps the identity better than base: identity not measured" in report


def test_loader_node_takes_our_editor_lora(project, tiny_qwen_edit):
    make_tiny_lora(tiny_qwen_edit, project.qwen_lora_dir("v2") / "qwen_char_lora_v2.safetensors")
    loader = NODES["FlenwheelQwenEditLoader"]()
    handle, description = loader.load(str(tiny_qwen_edit), "(use the model's own transformer)", "fp32", "none",
                                      "none", "none", False, extra_loras="ours:latest:0.6", project=project)
    assert handle.loras[0]["path"].endswith("models/qwen_lora/v2/qwen_char_lora_v2.safetensors")
    assert "qwen_char_lora_v2.safetensors @ 0.6" in description
    with pytest.raises(FlenwheelError, match="give the project"):
        loader.load(str(tiny_qwen_edit), "(use the model's own transformer)", "fp32", "none", "none", "none",
                    False, extra_loras="ours:v2")
