"""A plain clone runs every test: the face photos ship with it, CI runs the slow set, the README says what it needs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACES = ROOT / "tests" / "data" / "faces"


def _used_face_files() -> set[str]:
    """Every photo the other tests name as a path under the faces folder."""
    used = set()
    for path in (ROOT / "tests").rglob("*.py"):
        if path.resolve() == Path(__file__).resolve():
            continue
        text = path.read_text()
        used |= {f"{a}/{b}" for a, b in re.findall(r'faces / "(\w+)" / "([\w.]+)"', text)}
        used |= set(re.findall(r'faces / "(\w+/[\w.]+)"', text))
    return used


def test_the_face_photos_the_tests_use_are_in_the_repository(faces):
    assert faces == FACES
    used = _used_face_files()
    assert len(used) >= 5
    missing = sorted(name for name in used if not (FACES / name).is_file())
    assert not missing, f"tests use photos the repository does not ship: {missing}"
    readme = (FACES / "README.md").read_text()
    assert "ageitgey/face_recognition" in readme and "MIT" in readme and "public domain" in readme


def test_ci_runs_the_slow_tests_after_the_readme_command():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines.index("pytest -m slow") > lines.index("pytest")


def test_readme_names_chromium_and_the_test_time():
    readme = (ROOT / "README.md").read_text()
    assert "apt-get install -y chromium" in readme
    assert re.search(r"`pytest` takes about \d+ minutes", readme)


def test_the_triplet_trainer_test_fails_when_the_trainer_does_not_import():
    text = (ROOT / "tests" / "triplets" / "test_trainer_consumes_triplets.py").read_text()
    assert "pytest.skip" not in text and "importorskip" not in text and "except ImportError" not in text
    assert "\nfrom flenwheel.trainers" in text
