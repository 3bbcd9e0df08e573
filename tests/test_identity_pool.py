"""The identity filter and ``identity score`` on several cores give the scores of one core."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("face_recognition")

from flenwheel.cli import cli  # noqa: E402
from flenwheel.core.data.errors import FlenwheelError  # noqa: E402
from flenwheel.core.data.images import load_image  # noqa: E402
from flenwheel.core.identity import pool  # noqa: E402
from flenwheel.core.identity.filter import run_filter  # noqa: E402
from flenwheel.core.identity.pool import check_workers, cpu_cores  # noqa: E402

SOURCES = ["obama/obama.jpg", "obama/obama2.jpg"]
SYNTHETIC = ["obama/obama3.jpg", "obama/obama4.jpg", "biden/biden.jpg", "group/obama_biden.jpg"]


def _small(image: Image.Image) -> Image.Image:
    image = image.copy()
    image.thumbnail((480, 480), Image.Resampling.LANCZOS)
    return image


@pytest.fixture
def character(project, faces, noise_image):
    sources = project.create_dataset("source")
    for name in SOURCES:
        sources.add_image(_small(load_image(faces / name)), stem=name.split("/")[1][:-4], caption="photo")
    synthetic = project.create_dataset("synthetic")
    for seed, name in enumerate(SYNTHETIC):
        synthetic.add_image(_small(load_image(faces / name)), stem=name.split("/")[1][:-4], prompt="p", seed=seed)
    synthetic.add_image(noise_image((160, 160)), stem="noise", prompt="p", seed=99)
    return project


def test_filter_on_two_workers_gives_the_scores_of_one(character, monkeypatch):
    monkeypatch.setattr(pool, "fork_is_safe", lambda: True)  # as in the flenwheel filter command: forked
    one = run_filter(character, workers=1).to_json()
    filtered = sorted(p.name for p in (character.dataset("synthetic").path / "filtered").iterdir())
    two = run_filter(character, rescore=True, workers=2).to_json()
    assert [i["identity"] for i in two["images"]] == [i["identity"] for i in one["images"]]
    assert not any(i["reused_score"] for i in two["images"])
    assert {i["identity"]["verdict"] for i in one["images"]} >= {"match", "mismatch", "no_face"}
    assert sorted(p.name for p in (character.dataset("synthetic").path / "filtered").iterdir()) == filtered
    assert character.dataset("synthetic").verify().ok


def test_identity_score_cli_workers_option(character, faces, monkeypatch):
    monkeypatch.setattr(pool, "fork_is_safe", lambda: False)  # as inside ComfyUI: spawned workers
    refs = [str(faces / name) for name in SOURCES]
    images = [str(faces / name) for name in SYNTHETIC]

    def score(workers: int) -> list[dict]:
        args = ["identity", "score", *[a for ref in refs for a in ("--ref", ref)], *images, "--json"]
        result = CliRunner().invoke(cli, [*args, "--workers", str(workers)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["images"]

    assert score(2) == score(1)
    refused = CliRunner().invoke(cli, ["identity", "score", "--ref", refs[0], images[0], "--workers", "-1"])
    assert refused.exit_code == 2 and "--workers" in refused.output


def test_workers_are_spawned_once_torch_is_loaded(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert not pool.fork_is_safe() and pool._context().get_start_method() == "spawn"


def test_worker_count_defaults_to_every_core_and_refuses_negatives():
    assert check_workers(0) == check_workers(None) == cpu_cores() >= 1
    assert check_workers(3) == 3
    with pytest.raises(FlenwheelError, match="workers must be 0 .every core. or a positive count, not -2"):
        check_workers(-2)
