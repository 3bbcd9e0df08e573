"""Curation face checks (step 1.1): no face, several faces, and a different person in the set."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("face_recognition")

from flenwheel.cli import cli  # noqa: E402
from flenwheel.core.curate.face_checks import SKIPPED_NOTICE, FaceSourceCheck  # noqa: E402
from flenwheel.core.data.images import load_image  # noqa: E402
from flenwheel.core.identity import faces as faces_module  # noqa: E402
from flenwheel.nodes.curate_node import FlenwheelCurateSources  # noqa: E402

OBAMA = ["obama/obama.jpg", "obama/obama2.jpg", "obama/obama3.jpg", "obama/obama4.jpg"]


@pytest.fixture(scope="module")
def photos(faces, tmp_path_factory):
    """Copies whose short side is 560 px: enough for the quality check, small enough to stay quick."""
    folder = tmp_path_factory.mktemp("photos")
    for name in [*OBAMA, "biden/biden.jpg", "biden/biden2.jpg", "group/obama_biden.jpg"]:
        image = load_image(faces / name)
        scale = 560 / min(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
        image.save(folder / f"{name.split('/')[1].split('.')[0]}.png")
    noise = np.random.default_rng(0).integers(0, 256, (640, 640, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(folder / "noise.png")
    return folder


def test_source_add_flags_face_counts_and_check_flags_the_outlier(project, photos):
    runner = CliRunner()
    added = runner.invoke(cli, ["source", "add", str(project.root), str(photos), "--json"])
    assert added.exit_code == 0, added.output
    data = json.loads(added.output)
    reasons = {r["filename"]: r["quality"]["reasons"] for r in data["added"]}
    assert reasons["noise.png"] == ["no face"]
    assert reasons["obama_biden.png"] == ["2 faces"]
    assert all(reasons[f"{name.split('/')[1][:-4]}.png"] == [] for name in OBAMA)
    assert reasons["biden.png"] == [] and data["notices"] == []

    checked = runner.invoke(cli, ["source", "check", str(project.root), "--json"])
    problems = json.loads(checked.output)["problems"]
    assert problems["noise.png"] == ["no face"]
    assert any("identity outlier" in p for p in problems["biden.png"])
    assert "obama_biden.png" in problems
    assert not any(name in problems for name in ("obama.png", "obama2.png", "obama3.png", "obama4.png"))
    text = runner.invoke(cli, ["source", "check", str(project.root)])
    assert "not usable: biden.png: identity outlier" in text.output


def test_set_check_covers_sources_added_without_face_checks(project, photos):
    dataset = project.create_dataset("source")
    for path in sorted(photos.iterdir()):
        dataset.add_image(load_image(path), stem=path.stem, quality={"reasons": [], "passed": True})
    issues = FaceSourceCheck(project).set_issues(dataset)
    by_name = {record.filename: issues.get(record.id, []) for record in dataset.records}
    assert by_name["noise.png"] == ["no face"]
    assert by_name["obama_biden.png"][0] == "2 faces"
    assert any("identity outlier" in issue for issue in by_name["biden.png"])
    assert by_name["obama.png"] == [] and by_name["obama4.png"] == []


def test_set_without_a_majority_is_called_out(project, photos):
    dataset = project.create_dataset("source")
    for stem in ("obama", "obama2", "biden", "biden2"):
        dataset.add_image(load_image(photos / f"{stem}.png"), stem=stem)
    issues = FaceSourceCheck(project).set_issues(dataset)
    texts = [text for found in issues.values() for text in found]
    assert any("more than one person" in text for text in texts), issues


def test_curate_node_runs_face_checks(project, photos):
    _, _, report = FlenwheelCurateSources().curate(project, str(photos), "front", "neutral", "", False, False)
    assert "not usable: noise.png: no face" in report
    assert "identity outlier" in report


def test_without_face_recognition_the_checks_are_skipped_with_a_notice(project, photos, monkeypatch):
    monkeypatch.setattr(faces_module, "_api", None)
    monkeypatch.setitem(sys.modules, "face_recognition", None)
    runner = CliRunner()
    added = runner.invoke(cli, ["source", "add", str(project.root), str(photos / "noise.png"), "--json"])
    assert added.exit_code == 0, added.output
    data = json.loads(added.output)
    assert data["notices"] == [SKIPPED_NOTICE] and data["added"][0]["quality"]["reasons"] == []
    checked = runner.invoke(cli, ["source", "check", str(project.root)])
    assert SKIPPED_NOTICE in checked.output
