"""The whole run on the tiny FLUX (its images are noise): honest numbers, files on disk, resume."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.benchmark.results import write_outputs
from flenwheel.core.benchmark.run import FluxRenderer, run_benchmark
from flenwheel.core.models.character_lora import parse_lora_ref
from flenwheel.core.review.store import ReviewStore

pytestmark = pytest.mark.usefixtures("no_pose_env")


class Stop(Exception):
    """Stands in for ComfyUI's interrupt, raised from the progress callback."""


def renderer(flux_pipe, project, version="v1"):
    return FluxRenderer(flux_pipe.with_loras([parse_lora_ref(f"char_{version}", project)]))


def test_noise_leaves_identity_not_measured_and_scores_zero(lora_character, flux_pipe, tiny_render):
    card = load_card(tries=1, render=tiny_render)
    run = run_benchmark(lora_character, renderer(flux_pipe, lora_character), card)
    assert (run.label, run.dataset.label, run.generated) == ("char_v1", "benchmark/v1", 23)
    outputs = write_outputs(lora_character, run.label, run.dataset)
    folder = lora_character.benchmarks_dir / "char_v1"
    assert outputs.folder == folder
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    summary = results["summary"]
    assert summary["first_try"] == {"successes": 0, "cells": 23, "rate": 0.0}
    assert summary["any_of_k"]["rate"] == 0.0 and summary["target_met"] is False and summary["complete"]
    assert summary["checks"]["identity"] == {"pass": 0, "fail": 0, "not measured": 23, "n/a": 0, "pass_rate": None}
    for cell in results["cells"]:
        first = cell["tries"][0]
        assert first["checks"]["identity"] == {"status": "not measured", "value": None,
                                               "detail": "not measured: no face found"}
        assert first["checks"]["resolution"]["detail"] == "64x64 is under 1024 px on a side"
        assert first["seed"] == cell["seeds"][0] and (lora_character.root / first["file"]).is_file()
        assert first["failures"][0].startswith("resolution: 64x64") and first["success"] is False
        assert not any(f.startswith("identity") for f in first["failures"]), "no face is never a failure"
    assert results["settings"]["signature"]["loras"][0]["sha256"]
    assert "left to the human verdict" in results["checks"]["body_pose"]["status"]
    assert results["checks"]["body_pose"]["by"] == "human" and results["checks"]["identity"]["by"] == "automatic"
    assert results["settings"]["render"] == {"width": 64, "height": 64, "steps": 2, "guidance": 3.5}
    card_image = Image.open(folder / "model_card.png")
    assert card_image.width > 1000 and card_image.height > 1000
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert report.count("data:image/jpeg;base64,") == 24
    assert "First-try success 0/23" in report and "resolution: 64x64 is under 1024 px on a side" in report


def test_a_verdict_is_reported_without_rerunning_the_model(lora_character, flux_pipe, tiny_render, small_card_file):
    run = run_benchmark(lora_character, renderer(flux_pipe, lora_character), load_card([small_card_file], tries=1,
                                                                                      render=tiny_render))
    ReviewStore(lora_character).decide(run.first_try_ids[0], "benchmark", run.dataset.version, "correct")
    ReviewStore(lora_character).decide(run.first_try_ids[1], "benchmark", run.dataset.version, "incorrect",
                                       reason="artifacts")
    results = write_outputs(lora_character, "v1").results
    human = results["summary"]["human"]
    assert (human["first_try_cells_with_verdict"], human["first_try_correct"]) == (2, 1)
    first, second = (results["cells"][i]["tries"][0] for i in (0, 1))
    assert first["verdict"]["label"] == "correct" and first["success"] is False
    assert "human: incorrect (artifacts)" in second["failures"]
    assert lora_character.dataset("benchmark", "v1").record(run.first_try_ids[1]).label == "incorrect"


def test_rerun_resumes_and_rescoring_follows_the_checks(lora_character, flux_pipe, tiny_render, small_card_file):
    render = renderer(flux_pipe, lora_character)

    def stop_after_two(done, total, image, record):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        run_benchmark(lora_character, render, load_card([small_card_file], tries=2, render=tiny_render),
                      on_image=stop_after_two)
    assert len(lora_character.dataset("benchmark", "v1").records) == 2
    resumed = run_benchmark(lora_character, render, load_card([small_card_file], tries=2, render=tiny_render))
    assert (resumed.generated, resumed.reused, resumed.rescored) == (4, 2, 4)
    more = run_benchmark(lora_character, render, load_card([small_card_file], tries=3, render=tiny_render))
    assert (more.generated, more.reused, more.rescored, more.dataset.version) == (3, 6, 3, "v1")
    narrower = run_benchmark(lora_character, render, load_card([small_card_file], tries=3, render=tiny_render),
                             checks="identity,resolution")
    assert (narrower.generated, narrower.rescored) == (0, 9)
    results = write_outputs(lora_character, "char_v1").results
    assert results["cells"][0]["tries"][2]["checks"]["sharpness"]["detail"] == "not selected for this run"
    other = run_benchmark(lora_character, renderer(flux_pipe, lora_character, "v2"),
                          load_card([small_card_file], tries=1, render=tiny_render))
    assert (other.label, other.dataset.version, other.generated) == ("char_v2", "v2", 3)
