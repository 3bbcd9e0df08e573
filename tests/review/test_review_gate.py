"""The ReviewGate node: waits for the reviewer (fake PromptServer, a thread that decides), passes
through what is decided, honours Cancel and the timeout policy, and is never cached."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from flenwheel.core.data.handles import DatasetHandle
from flenwheel.core.data.images import images_to_tensor
from flenwheel.core.review.gate import ReviewTimeout, scope_for, wait_for_review
from flenwheel.core.review.store import ReviewStore
from flenwheel.nodes import load_nodes
from flenwheel.nodes.review_node import EVENT_DONE, EVENT_WAITING, FlenwheelReviewGate


class FakePromptServer:
    """Records what the node pushes to the browser."""

    def __init__(self) -> None:
        from aiohttp import web

        self.routes = web.RouteTableDef()
        self.events: list[tuple[str, dict]] = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))


@pytest.fixture
def prompt_server(monkeypatch):
    fake = FakePromptServer()
    module = types.ModuleType("server")
    module.PromptServer = type("PromptServer", (), {"instance": fake})
    monkeypatch.setitem(sys.modules, "server", module)
    return fake


@pytest.fixture
def interrupt(monkeypatch):
    """A stand-in for comfy.model_management whose Cancel flag the test can raise."""

    class Interrupted(Exception):
        pass

    state = {"cancel": False, "checks": 0}

    def throw_exception_if_processing_interrupted():
        state["checks"] += 1
        if state["cancel"]:
            raise Interrupted("cancelled")

    comfy = types.ModuleType("comfy")
    management = types.ModuleType("comfy.model_management")
    management.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    management.processing_interrupted = lambda: state["cancel"]
    comfy.model_management = management
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.model_management", management)
    return state, Interrupted


def _run(project, **inputs):
    defaults = {"stage": "enriched", "mode": "wait", "timeout_minutes": 1, "on_timeout": "fail"}
    return FlenwheelReviewGate().review(project, **(defaults | inputs))


def test_wait_mode_blocks_until_a_reviewer_decides_everything(enriched, prompt_server, interrupt):
    project, records = enriched(4)
    store = ReviewStore(project)
    verdicts = [("good", None), ("good", None), ("needs_correction", "artifacts"),
                ("reject", "identity drift")]

    def reviewer():
        while not any(event == EVENT_WAITING for event, _ in prompt_server.events):
            time.sleep(0.05)
        for record, (label, reason) in zip(records, verdicts, strict=True):
            time.sleep(0.1)
            store.decide(record.id, "enriched", "v1", label, reason=reason)

    thread = threading.Thread(target=reviewer)
    thread.start()
    started = time.monotonic()
    result = _run(project, unique_id="17")["result"]
    thread.join()
    assert time.monotonic() - started >= 0.4

    good_images, good, fix_images, fixes, reject_images, rejects, summary = result
    assert good_images.shape == (2, 96, 96, 3) and fix_images.shape[0] == 1 and reject_images.shape[0] == 1
    assert isinstance(good, DatasetHandle) and set(good.ids) == {records[0].id, records[1].id}
    assert [r.filename for r in fixes.records()] == ["corrections/edit_002.png"]
    assert rejects.records()[0].reason == "identity_drift"
    assert "0 pending" in summary and "FAIL at least 30 good" in summary

    waiting = [data for event, data in prompt_server.events if event == EVENT_WAITING]
    assert waiting[0]["pending"] == 4 and waiting[0]["total"] == 4 and waiting[0]["node"] == "17"
    assert waiting[0]["stage"] == "enriched" and waiting[0]["version"] == "v1"
    done = [data for event, data in prompt_server.events if event == EVENT_DONE]
    assert done and done[0]["summary"]["pending"] == 0
    assert interrupt[0]["checks"] >= 2


def test_cancel_stops_the_wait_and_keeps_the_decisions(enriched, prompt_server, interrupt):
    project, records = enriched(3)
    state, Interrupted = interrupt
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "good")
    threading.Timer(0.3, lambda: state.update(cancel=True)).start()
    with pytest.raises(Interrupted):
        _run(project)
    assert ReviewStore(project).current("enriched", "v1")[records[0].id].label == "good"


def test_pass_through_returns_only_what_is_decided(enriched):
    project, records = enriched(3)
    ReviewStore(project).decide(records[1].id, "enriched", "v1", "good")
    output = _run(project, mode="pass_through")
    good_images, good, fix_images, _, reject_images, _, summary = output["result"]
    assert good.ids == (records[1].id,) and good_images.shape[0] == 1
    assert fix_images is None and reject_images is None  # ComfyUI's ExecutionBlocker outside ComfyUI
    assert "2 pending" in summary and output["ui"]["text"] == [summary]
    assert project.dataset("enriched", "v1").record(records[1].id).filename == "good/edit_001.png"


def test_a_dataset_subset_limits_the_gate(enriched):
    project, records = enriched(4)
    subset = DatasetHandle(project.dataset("enriched", "v1")).subset([records[0].id, records[3].id])
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "reject", reason="artifacts")
    summary = _run(project, mode="pass_through", dataset=subset)["result"][-1]
    assert "2 images" in summary and "1 pending" in summary


def test_pristine_picks_come_out_of_the_pristine_dataset(synthetic):
    project, records = synthetic(3)
    ReviewStore(project).decide(records[2].id, "synthetic", "v1", "pristine", note="fills gap")
    result = _run(project, stage="synthetic", mode="pass_through")["result"]
    assert result[1].label == "pristine/v1" and result[1].ids == (records[2].id,)
    assert "at least 10 pristine" in result[-1] and "coverage" in result[-1]


def test_images_without_a_dataset_are_added_then_reviewed(project, picture):
    batch = images_to_tensor([picture(1), picture(2)])
    summary = _run(project, mode="pass_through", images=batch)["result"][-1]
    dataset = project.dataset("enriched", "v1")
    assert len(dataset.records) == 2 and "2 pending" in summary
    assert dataset.records[0].origin == "ReviewGate input"


def test_a_wrong_dataset_stage_is_a_clear_error(synthetic):
    project, _ = synthetic(1)
    handle = DatasetHandle(project.dataset("synthetic", "v1"))
    with pytest.raises(Exception, match="the enriched review takes enriched datasets"):
        _run(project, mode="pass_through", dataset=handle)


@pytest.mark.parametrize("policy", ["fail", "pass_decided"])
def test_timeout_policy(enriched, policy):
    project, records = enriched(2)
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "good")
    scope = scope_for(project, "enriched")
    now = [0.0]
    ticks = []

    def sleep(seconds):
        now[0] += seconds

    def run():
        return wait_for_review(scope, 10, policy, lambda pending, total: ticks.append(pending), sleep=sleep,
                               clock=lambda: now[0])

    if policy == "fail":
        with pytest.raises(ReviewTimeout, match="1 of 2 images .* still undecided after 10 s"):
            run()
    else:
        assert run() is True
    assert ticks[0] == 1 and 19 <= len(ticks) <= 22


def test_the_gate_is_never_cached_and_is_registered():
    assert math.isnan(FlenwheelReviewGate.IS_CHANGED(mode="pass_through"))
    classes, names = load_nodes()
    assert classes["FlenwheelReviewGate"] is FlenwheelReviewGate
    assert names["FlenwheelReviewGate"] == "FLENwheel Review Gate"
    spec = FlenwheelReviewGate.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, (_, options) in spec[group].items():
            assert options.get("tooltip"), name
    assert FlenwheelReviewGate.CATEGORY.startswith("FLENwheel/") and FlenwheelReviewGate.DESCRIPTION


def test_comfyui_loading_the_pack_mounts_the_review_routes(prompt_server, monkeypatch):
    import flenwheel
    from flenwheel.nodes import _review_routes

    monkeypatch.setattr(flenwheel, "_registry", {})
    monkeypatch.setattr(_review_routes, "_state", {})
    assert "FlenwheelReviewGate" in flenwheel.NODE_CLASS_MAPPINGS
    paths = {route.path for route in prompt_server.routes}
    assert "/flenwheel/review/projects" in paths
    assert "/flenwheel/review/{project}/decide" in paths
    assert not _review_routes.mount_review_routes()


@pytest.mark.parametrize("name", ["03 Review enriched images", "07 Pick the pristine synthetic set"])
def test_the_review_workflows_match_the_node(name):
    folder = Path(__file__).resolve().parents[2] / "workflows"
    prompt = json.loads((folder / "api" / f"{name}.json").read_text())
    classes, _ = load_nodes()
    gate = next(node for node in prompt.values() if node["class_type"] == "FlenwheelReviewGate")
    spec = FlenwheelReviewGate.INPUT_TYPES()
    assert set(gate["inputs"]) <= set(spec["required"]) | set(spec["optional"])
    assert gate["inputs"]["stage"] in spec["required"]["stage"][0]
    assert {node["class_type"] for node in prompt.values()} <= set(classes) | {"PreviewImage", "PreviewAny"}
    ui = json.loads((folder / f"{name}.json").read_text())
    wanted = sorted(node["class_type"] for node in prompt.values())
    assert sorted(node["type"] for node in ui["nodes"] if node["type"] != "MarkdownNote") == wanted
