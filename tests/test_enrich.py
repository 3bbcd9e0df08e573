"""Enrichment engine on the tiny Qwen-Image-Edit-2509: records, seeds, resume, identity gate, references.

Tiny outputs are noise, so the identity gate is tested with fake scorers: that exercises the
regenerate / keep-drifted logic, which is what enrichment owns (face recognition is tested by
the identity stage).
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, replace

import numpy as np
import pytest
from PIL import Image

from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.errors import DatasetError, FlenwheelError
from flenwheel.core.data.images import load_image, pixel_hash
from flenwheel.core.enrich.enrich import EnrichSettings, edit_once, enrich
from flenwheel.core.identity.gate import resolve_gate
from flenwheel.core.models.pipelines import LoadOptions
from flenwheel.core.models.qwen_edit_loader import load_qwen_edit

FAST = EnrichSettings(steps=2, width=64, height=64, vae_pixels=64 * 64, condition_pixels=56 * 56)


@dataclass
class FakeScore:
    match: bool
    distance: float | None

    def to_json(self):
        reason = None if self.match else "different person"
        return {"match": self.match, "distance": self.distance, "reason": reason}


class ScriptedScorer:
    """Answers with the given (match, distance) pairs in order, then always matches."""

    tolerance = 0.6

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen = []

    def score(self, image):
        self.seen.append(pixel_hash(image))
        match, distance = self.answers.pop(0) if self.answers else (True, 0.3)
        return FakeScore(match, distance)


@pytest.fixture(scope="module")
def handle(tiny_qwen_edit, one_torch_thread):
    """The tiny pipeline, run on one thread: tiny ops gain nothing from more, and CI cores are shared."""
    return load_qwen_edit(str(tiny_qwen_edit), options=LoadOptions(dtype="fp32", device="cpu"))


def _fast(**changes):
    return replace(FAST, **changes)


def _noise(seed, size=(64, 80)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


@pytest.fixture
def sources(project):
    angles = ["front", "half-left", "profile-right"]
    for index, angle in enumerate(angles):
        add_sources(project, images=[(f"src{index}", _noise(index))], angle=angle, expression="neutral")
    return project


def test_three_sources_four_edits_write_twelve_linked_images(sources, handle, tiny_qwen_edit):
    result = enrich(sources, handle, FAST)
    dataset = result.dataset
    assert dataset.label == "enriched/v1" and result.planned == 12 and len(result.added) == 12
    raw = json.loads((dataset.path / "enrichment_metadata.json").read_text(encoding="utf-8"))
    assert raw["info"]["source_dataset"] == "source/v1" and raw["info"]["settings"]["steps"] == 2
    source_records = {r.id: r for r in sources.dataset("source").records}
    templates_families = {"background", "lighting", "style", "camera_angle"}
    for record in raw["images"]:
        assert (dataset.path / record["filename"]).is_file()
        parent = source_records[record["parents"][0]]
        assert record["source_file"] == parent.filename and record["source_dataset"] == "source/v1"
        assert record["family"] in templates_families and record["value"]
        assert "Keep the person exactly the same" in record["prompt"]
        assert record["model"] == str(tiny_qwen_edit) and record["loras"] == []
        assert (record["steps"], record["true_cfg"], record["width"], record["height"]) == (2, 4.0, 64, 64)
        assert (record["vae_pixels"], record["condition_pixels"]) == (64 * 64, 56 * 56)
        assert isinstance(record["seed"], int) and record["seconds"] > 0
        assert record["drifted"] is False and record["attempts"] == 1 and "identity" not in record["scores"]
        assert "ohwx_char person" in record["caption"]
        assert record["angle"] == (None if record["family"] == "camera_angle" else parent.angle)
    assert sum(r["sample_for_manual_check"] for r in raw["images"]) == 1
    assert raw["images"][9]["sample_for_manual_check"] is True
    assert len({r["seed"] for r in raw["images"]}) == 12
    assert dataset.verify().ok
    summary = result.summary
    assert summary.count_passed and summary.total == 15
    assert summary.families == dict.fromkeys(templates_families, 3)
    assert summary.identity_passed is None and "identity not checked" in "\n".join(summary.lines())


def test_recorded_seed_reproduces_the_image(sources, handle):
    record = enrich(sources, handle, _fast(per_source=1, families=("style",))).dataset.records[0]
    source = sources.dataset("source")
    image = load_image(source.image_path(source.record(record.parents[0])))
    again = edit_once(handle, image, record.prompt, record.seed, FAST)
    assert pixel_hash(again.image) == record.id
    other = edit_once(handle, image, record.prompt, record.seed + 1, FAST)
    assert pixel_hash(other.image) != record.id


def test_same_seed_same_plan_and_pixels_in_a_new_version(sources, handle):
    settings = _fast(per_source=1)
    first = enrich(sources, handle, settings)
    second = enrich(sources, handle, settings, new_version=True)
    assert second.dataset.label == "enriched/v2"
    assert [r.id for r in first.dataset.records] == [r.id for r in second.dataset.records]
    reseeded = enrich(sources, handle, _fast(per_source=1, seed=5))
    assert reseeded.dataset.label == "enriched/v3"
    assert {r.seed for r in reseeded.dataset.records}.isdisjoint({r.seed for r in first.dataset.records})


def test_interrupted_run_resumes_without_redoing_finished_edits(sources, handle, monkeypatch):
    settings = _fast(per_source=2)
    saved = []

    def progress(done, total, image=None):
        if image is not None:
            saved.append(done)

    first = enrich(sources, handle, settings, should_stop=lambda: len(saved) >= 2, on_progress=progress)
    assert first.stopped and len(first.added) == 2
    kept = {r.filename: r.id for r in first.dataset.records}
    assert first.dataset.load().info["last_run"]["stopped"] is True

    import flenwheel.core.enrich.qwen_edit as qwen_edit

    edits = []
    original = qwen_edit.edit_once
    monkeypatch.setattr(qwen_edit, "edit_once", lambda *a, **k: edits.append(1) or original(*a, **k))
    second = enrich(sources, handle, settings)
    assert second.dataset.label == first.dataset.label
    assert (second.resumed, len(second.added), len(edits)) == (2, 4, 4)
    records = second.dataset.records
    assert len(records) == 6 and len({r.edit_key for r in records}) == 6
    assert all(kept[name] == rid for name, rid in ((r.filename, r.id) for r in records) if name in kept)
    assert second.dataset.verify().ok


def test_interrupt_raised_from_progress_keeps_the_finished_images(sources, handle):
    class Interrupted(Exception):
        pass

    def progress(done, total, image=None):
        if done == 2:
            raise Interrupted

    settings = _fast(per_source=1)
    with pytest.raises(Interrupted):
        enrich(sources, handle, settings, on_progress=progress)
    dataset = sources.dataset("enriched")
    assert len(dataset.records) == 2 and dataset.verify().ok
    assert len(enrich(sources, handle, settings).added) == 1


def test_deleted_image_is_made_again_on_resume(sources, handle):
    settings = _fast(per_source=1)
    dataset = enrich(sources, handle, settings).dataset
    victim = dataset.records[1]
    dataset.image_path(victim).unlink()
    again = enrich(sources, handle, settings)
    assert [r.id for r in again.added] == [victim.id]
    assert dataset.image_path(again.added[0]).is_file() and len(dataset.records) == 3


def test_other_settings_never_mix_into_a_version(sources, handle):
    enrich(sources, handle, _fast(per_source=1))
    changed = _fast(per_source=1, steps=3)
    with pytest.raises(DatasetError, match="enriched/v1 was made with other settings.*steps"):
        enrich(sources, handle, changed, version="v1")
    assert enrich(sources, handle, changed).dataset.label == "enriched/v2"


def test_gate_regenerates_with_new_seed_until_the_face_matches(sources, handle):
    scorer = ScriptedScorer([(False, 0.9), (False, 0.7)])
    settings = _fast(per_source=1, families=("background",))
    records = enrich(sources, handle, settings, scorer=scorer).dataset.records
    first = records[0].model_extra
    assert first["attempts"] == 3 and first["drifted"] is False
    assert records[0].scores["identity"] == {"match": True, "distance": 0.3, "reason": None}
    seeds = [attempt["seed"] for attempt in first["identity_attempts"]]
    assert len(set(seeds)) == 3 and records[0].seed == seeds[-1]
    assert len(set(scorer.seen[:3])) == 3 and records[0].id == scorer.seen[2]
    assert all(r.model_extra["attempts"] == 1 for r in records[1:])


def test_gate_keeps_the_closest_drifted_attempt_for_review(sources, handle):
    scorer = ScriptedScorer([(False, 0.8), (False, 0.65), (False, None)] + [(False, 0.9)] * 6)
    result = enrich(sources, handle, _fast(per_source=1, families=("lighting",)), scorer=scorer)
    records = result.dataset.records
    assert len(records) == 3, "drifted edits are kept, never dropped"
    first = records[0]
    assert first.model_extra["drifted"] is True and first.model_extra["attempts"] == 3
    assert first.scores["identity"]["distance"] == 0.65 and first.id == scorer.seen[1]
    assert first.seed == first.model_extra["identity_attempts"][1]["seed"]
    assert result.summary.checked == 3 and result.summary.kept == 0 and result.summary.drifted == 3
    assert result.summary.identity_passed is False and "0/3 edits kept" in "\n".join(result.summary.lines())


def test_gate_rate_counts_kept_edits(sources, handle):
    scorer = ScriptedScorer([(True, 0.2), (False, 0.9), (False, 0.9), (True, 0.5)])
    summary = enrich(sources, handle, _fast(per_source=1, max_retries=1), scorer=scorer).summary
    assert (summary.checked, summary.kept, summary.drifted) == (3, 2, 1)
    assert summary.kept_rate == pytest.approx(2 / 3) and summary.identity_passed is False


def test_reference_image_goes_in_as_picture_two(sources, handle):
    reference = _noise(99, (64, 64))
    settings = _fast(per_source=1, families=("background",))
    with_ref = enrich(sources, handle, settings, reference_image=reference).dataset.records
    without = enrich(sources, handle, settings, new_version=True).dataset.records
    assert all("Picture 2" in r.prompt for r in with_ref)
    assert all(r.model_extra["reference_file"] == "reference image" for r in with_ref)
    assert [r.id for r in with_ref] != [r.id for r in without]


def test_other_source_reference_prefers_a_different_angle(sources, handle):
    settings = _fast(per_source=1, reference="other_source", families=("style",))
    records = enrich(sources, handle, settings).dataset.records
    source = {r.id: r for r in sources.dataset("source").records}
    for record in records:
        own, other = (source[pid] for pid in record.parents)
        assert own.id != other.id and own.angle != other.angle
        assert record.model_extra["reference_file"] == other.filename


def test_edit_once_refuses_more_than_three_images(handle):
    with pytest.raises(FlenwheelError, match="at most 2 reference images"):
        edit_once(handle, _noise(0), "x", 0, FAST, [_noise(1), _noise(2), _noise(3)])


def test_no_sources_and_bad_settings_fail_clearly(project, handle):
    with pytest.raises(FlenwheelError, match="no source dataset yet"):
        enrich(project, handle, FAST)
    project.create_dataset("source")
    with pytest.raises(DatasetError, match="no source images to enrich"):
        enrich(project, handle, FAST)
    with pytest.raises(FlenwheelError, match="multiples of 16.*try 64"):
        enrich(project, handle, EnrichSettings(width=70))


def test_gate_auto_is_off_without_the_identity_engine_and_on_fails(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "flenwheel.core.identity.identity", None)
    notes = []
    assert resolve_gate(project, "auto", log=notes.append) is None
    assert "identity gate off" in notes[0]
    with pytest.raises(FlenwheelError, match="gate=on.*cannot run.*identity engine is not installed"):
        resolve_gate(project, "on")
    assert resolve_gate(project, "off") is None
    with pytest.raises(FlenwheelError, match="unknown identity gate mode"):
        resolve_gate(project, "maybe")


def test_gate_uses_the_identity_engine_when_present(project, monkeypatch):
    built = []

    class Scorer:
        @classmethod
        def from_project(cls, project, tolerance=0.6):
            built.append(tolerance)
            return cls()

    engine = types.SimpleNamespace(IdentityScorer=Scorer, identity_available=lambda: True)
    monkeypatch.setitem(sys.modules, "flenwheel.core.identity.identity", engine)
    assert isinstance(resolve_gate(project, "on", tolerance=0.5), Scorer) and built == [0.5]
    engine.identity_available = lambda: False
    with pytest.raises(FlenwheelError, match="face_recognition is not installed"):
        resolve_gate(project, "on")
