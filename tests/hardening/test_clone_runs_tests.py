"""A plain clone runs every test it can: the face photos come from ../shared (never the repository), CI runs the slow
set, the README says what it needs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
#: Folders whose pictures are the pack's own drawings and screenshots (see scripts/README.md).
DRAWINGS = ("docs/", "web/", "workflows/")


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


def test_the_face_photos_the_tests_use_are_in_the_shared_folder(faces):
    used = _used_face_files()
    assert len(used) >= 5
    missing = sorted(name for name in used if not (faces / name).is_file())
    assert not missing, f"tests use photos {faces} does not hold: {missing}"


def test_no_picture_is_tracked_outside_the_drawing_folders():
    """Photos from other repositories never enter the project; only the pack's own drawings are tracked."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    pictures = [name for name in tracked.stdout.splitlines()
                if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(DRAWINGS)]
    assert not pictures, f"pictures tracked outside {DRAWINGS}: {pictures}"


def test_a_face_test_without_the_shared_folder_skips_and_names_it(tmp_path):
    """In a plain clone without ../shared, every face test skips with one reason naming the folder."""
    script = tmp_path / "test_needs_faces.py"
    script.write_text("def test_uses_faces(faces):\n    assert False, 'must not run'\n")
    conftest = ROOT / "tests" / "conftest.py"
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    env = {**os.environ, "FLENWHEEL_SHARED": str(tmp_path / "absent")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider", str(script)],
                         cwd=tmp_path, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout and str(tmp_path / "absent" / "faces") in run.stdout


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
