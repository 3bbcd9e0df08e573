"""What the command line says about bad input: the folder it means, the person who does not belong."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli


def test_identity_score_on_an_empty_folder_names_the_folder(faces, tmp_path):
    pytest.importorskip("face_recognition")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["identity", "score", "--ref", str(faces / "obama" / "obama.jpg"), str(empty)])
    assert result.exit_code == 2 and str(empty) in result.output and "no image files" in result.output
    result = CliRunner().invoke(cli, ["identity", "score", "--ref", str(empty), str(faces / "obama" / "obama.jpg")])
    assert result.exit_code == 2 and str(empty) in result.output


def test_source_add_names_an_identity_outlier(project, faces):
    pytest.importorskip("face_recognition")
    photos = [faces / "obama" / name for name in ("obama.jpg", "obama2.jpg", "obama4.jpg")]
    result = CliRunner().invoke(cli, ["source", "add", str(project.root), *map(str, photos),
                                      str(faces / "biden" / "biden.jpg")])
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("added ")}
    assert "identity outlier" in lines["biden.png"] and "a different person?" in lines["biden.png"]
    assert all("identity outlier" not in line for name, line in lines.items() if name != "biden.png")
