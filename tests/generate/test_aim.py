"""Aimed generation: the last card's misses and the training set's gaps get the images, the total stays."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.data.records import ImageRecord
from flenwheel.core.data.taxonomy import CARD_EXPRESSIONS
from flenwheel.core.generate.aim import aimed_plan, allocate, load_needs, needs_from_results
from flenwheel.core.generate.prompt_sets import load_prompt_set
from flenwheel.core.identity.coverage import count_coverage, image_tags


def _results(label: str, failed: dict[tuple[str, str], str]) -> dict:
    """A results.json of a scripted card: every portrait cell succeeded except those in ``failed``."""
    from flenwheel.core.data.taxonomy import CARD_ANGLES

    cells = [{"kind": "portrait", "angle": a, "expression": e, "first_try_outcome": failed.get((a, e), "success")}
             for a in CARD_ANGLES for e in CARD_EXPRESSIONS]
    cells += [{"kind": "pose", "pose": p, "first_try_outcome": "success"} for p in ("t-pose", "standing", "sitting")]
    return {"format": 1, "lora_version": label, "cells": cells, "summary": {}}


def _variants(allocation, view: str) -> int:
    return sum(s.variants for s in allocation.shares if s.prompt.angle == view)


def test_failed_profile_left_cells_get_more_prompts_with_the_same_total():
    prompt_set = load_prompt_set()
    plain = allocate(prompt_set, needs_from_results(None, None))
    failed = {("profile-left", e): "failure" for e in CARD_EXPRESSIONS}
    aimed = allocate(prompt_set, needs_from_results(_results("char_v1", failed), None))
    assert sum(s.variants for s in aimed.shares) == sum(s.variants for s in plain.shares) == 4 * len(
        prompt_set.prompts)
    assert {s.variants for s in plain.shares} == {4}
    assert _variants(aimed, "profile-left") > 2 * _variants(plain, "profile-left")
    assert _variants(aimed, "profile-right") < _variants(plain, "profile-right")
    share = next(s for s in aimed.shares if s.prompt.id == "angry-profile-left")
    assert "card char_v1: profile-left/angry failed its first try" in share.why


def test_unverified_cells_weigh_less_than_failed_ones():
    prompt_set = load_prompt_set()
    needs = needs_from_results(_results("char_v1", {("half-left", "sad"): "unverified",
                                                    ("half-right", "sad"): "failure"}), None)
    aimed = {s.prompt.id: s.variants for s in allocate(prompt_set, needs).shares}
    assert aimed["sad-half-right"] > aimed["sad-half-left"] > aimed["sad-front"]


def _record(stage: str, index: int, **fields) -> ImageRecord:
    return ImageRecord(id=f"{index:064x}", filename=f"{index}.png", stage=stage, **fields)


def test_coverage_counts_measured_and_curated_tags_never_prompt_tags():
    records = [
        _record("source", 1, angle="front", expression="neutral"),
        _record("pristine", 2, angle="profile-right", expression="angry"),  # a prompt's tags only
        _record("pristine", 3, angle="front", expression="smiling",
                scores={"view": {"view": "half-left", "yaw": 31.0}, "expression": "smiling"}),
    ]
    assert image_tags(records[1]).known("view") is None
    cover = count_coverage(records)
    assert cover.views["front"] == 1 and cover.views["half-left"] == 1 and cover.views["profile-right"] == 0
    assert cover.cells[("half-left", "smiling")] == 1 and cover.unmeasured == 1


def _readings(view: str, view_problem: str | None, word: str, confident: bool) -> dict:
    """What the face instruments store on a record (``scores["instruments"]``)."""
    return {"instruments": {"version": 1, "faces": 1, "view": view, "view_problem": view_problem, "yaw": -70.0,
                            "expression": {"word": word, "probability": 0.9, "confident": confident}}}


def test_coverage_reads_the_instruments_only_where_they_are_trusted():
    from flenwheel.core.vision.validation import load_validation

    validated = [w for w in CARD_EXPRESSIONS if load_validation().expression_validated(w)]
    unvalidated = [w for w in CARD_EXPRESSIONS if w not in validated]
    assert validated and unvalidated, "the packaged table validates some expressions and not others"
    records = [
        _record("pristine", 1, angle="front", expression="neutral",
                scores=_readings("profile-right", None, validated[0], True)),
        _record("pristine", 2, scores=_readings("profile-left", "not measured: the mesh doubts", unvalidated[0], True)),
        _record("pristine", 3, scores=_readings("half-left", None, validated[0], False)),
    ]
    tags = [image_tags(r) for r in records]
    assert (tags[0].known("view"), tags[0].known("expression")) == ("profile-right", validated[0])
    assert tags[1].known("view") is None and tags[1].known("expression") is None
    assert tags[2].known("view") == "half-left" and tags[2].known("expression") is None


def test_a_training_set_without_profile_views_aims_generation_at_them(project, solid_image):
    source = project.create_dataset("source")
    for index, expression in enumerate(("neutral", "smiling", "angry", "sad")):
        source.add_image(solid_image(color=(index * 40, 90, 90)), angle="front", expression=expression)
    needs = load_needs(project, None)
    assert needs.coverage.missing_views() == ["half-left", "profile-left", "half-right", "profile-right"]
    aimed = aimed_plan(project, needs)
    plain = aimed_plan(project, None)
    assert len(aimed.plan) == len(plain.plan)
    counts = {}
    for item in aimed.plan:
        counts[item.prompt_id] = counts.get(item.prompt_id, 0) + 1
    assert counts["profile-right"] > counts["front"]
    first = next(item for item in aimed.plan if item.prompt_id == "profile-right")
    assert "training set has no profile-right image" in first.tags()["aim"]
    assert {i.seed for i in plain.plan if i.prompt_id == "front"} >= {i.seed for i in aimed.plan
                                                                       if i.prompt_id == "front"}


def test_a_users_prompts_file_keeps_its_variants(project, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("families:\n  angles:\n    prompts:\n      - id: profile-left\n        angle: profile-left\n"
                    "        expression: neutral\n        prompt: 'my own profile photo of [trigger]'\n",
                    encoding="utf-8")
    (project.benchmarks_dir / "char_v1").mkdir(parents=True)
    failed = {("profile-left", e): "failure" for e in CARD_EXPRESSIONS}
    (project.benchmarks_dir / "char_v1" / "results.json").write_text(json.dumps(_results("char_v1", failed)))
    aimed = aimed_plan(project, load_needs(project, "char_v1"), [mine])
    mine_share = next(s for s in aimed.allocation.shares if s.prompt.id == "profile-left")
    assert mine_share.fixed and mine_share.variants == 4
    assert "named by your prompts file" in mine_share.why
    theirs = next(s for s in aimed.allocation.shares if s.prompt.id == "smiling-profile-left")
    assert theirs.variants > 4
    only_mine = aimed_plan(project, load_needs(project, "char_v1"), [mine], builtin=True, ids=["profile-left"])
    assert len(only_mine.plan) == 4


def test_generate_dry_run_prints_the_allocation(project, tmp_path):
    from flenwheel.cli import cli

    (project.benchmarks_dir / "char_v1").mkdir(parents=True)
    failed = {("profile-left", e): "failure" for e in CARD_EXPRESSIONS}
    (project.benchmarks_dir / "char_v1" / "results.json").write_text(json.dumps(_results("char_v1", failed)))
    result = CliRunner().invoke(cli, ["generate", str(project.root), "--base-only", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "aimed allocation: 148 images over 37 prompts; card char_v1" in result.output
    assert "angles/profile-left: 4 -> 12 (card char_v1: profile-left/neutral failed its first try)" in result.output
    assert "148 images planned" in result.output
    plain = CliRunner().invoke(cli, ["generate", str(project.root), "--base-only", "--dry-run", "--no-aim"])
    assert "not aimed" in plain.output and "148 images planned" in plain.output


@pytest.mark.parametrize("text", ["{", "[]"])
def test_an_unreadable_card_is_one_clear_line(project, text):
    from flenwheel.cli import cli

    (project.benchmarks_dir / "char_v1").mkdir(parents=True)
    (project.benchmarks_dir / "char_v1" / "results.json").write_text(text)
    result = CliRunner().invoke(cli, ["generate", str(project.root), "--base-only", "--dry-run"])
    assert result.exit_code != 0
    assert "results.json" in result.output and "--no-aim" in result.output
    assert "Traceback" not in result.output


def test_the_generate_node_and_the_items_node_plan_aimed(project):
    from types import SimpleNamespace

    from flenwheel.core.graph.items import plan_items
    from flenwheel.nodes._prompt_inputs import aimed_from_inputs

    (project.benchmarks_dir / "char_v1").mkdir(parents=True)
    failed = {("profile-left", e): "failure" for e in CARD_EXPRESSIONS}
    (project.benchmarks_dir / "char_v1" / "results.json").write_text(json.dumps(_results("char_v1", failed)))
    lora = project.flux_lora_dir("v1") / "char_lora_v1.safetensors"
    handle = SimpleNamespace(lora_specs=[SimpleNamespace(path=str(lora))])
    aimed = aimed_from_inputs(project, handle, "", "", "", 4, 0, 64, 64, 2, 3.5, "", 1.0)
    assert aimed.allocation.needs.card == "char_v1" and len(aimed.plan) == 148
    items = plan_items(project, "generate", label="char_v1")
    assert items.planned == 148
    assert any(line.startswith("aimed allocation: 148 images over 37 prompts; card char_v1") for line in items.lines())
    info = items.dataset.load().info
    assert info["aim"]["by_view"]["profile-left"] == 48 and "aim_lines" not in info


def test_the_training_set_is_the_frozen_one_when_written(project, solid_image):
    from flenwheel.core.training.planning import training_records

    source = project.create_dataset("source")
    kept = source.add_image(solid_image(size=(64, 64), color=(10, 20, 30)), angle="profile-right", expression="sad")
    source.add_image(solid_image(size=(64, 64), color=(30, 20, 10)), angle="front", expression="neutral")
    assert len(training_records(project, "v1")) == 2, "not frozen yet: the set train init would freeze"
    folder = project.flux_lora_dir("v1")
    folder.mkdir(parents=True)
    (folder / "training_set.json").write_text(json.dumps({"items": [
        {"id": kept.id, "origin": "source/v1"}, {"id": "x", "origin": "../../etc/v1"}, {"id": "y"}]}))
    assert [r.id for r in training_records(project, "v1")] == [kept.id]
    assert load_needs(project, "char_v1").coverage.missing_views() == ["front", "half-left", "profile-left",
                                                                        "half-right"]
    (folder / "training_set.json").write_text("{")
    with pytest.raises(FlenwheelError, match="training_set.json cannot be read"):
        training_records(project, "v1")
