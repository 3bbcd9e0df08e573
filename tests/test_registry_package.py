"""What the Comfy Registry and ComfyUI-Manager get: the files pyproject.toml names, and the archive's contents."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
import tomllib
from PIL import Image

pathspec = pytest.importorskip("pathspec")
# comfy-cli builds its spec with the "gitwildmatch" name that newer pathspec releases deprecate.
pytestmark = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = PYPROJECT["project"]["urls"]["Repository"]
#: The Registry takes the icon as a URL; on the default branch it must be a file of this repository.
RAW_PREFIX = REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
#: Top-level entries a user runs; everything else must stay out of the archive.
SHIPPED = {"__init__.py", "__main__.py", "cli", "comfy_tools", "core", "nodes", "trainers", "web", "workflows",
           "docs", "README.md", "LICENSE", "pyproject.toml", "requirements.txt", "install.py"}


def _local(reference: str) -> Path:
    assert reference.startswith(RAW_PREFIX) or "://" not in reference, f"{reference} is not in {REPOSITORY}"
    return ROOT / reference.removeprefix(RAW_PREFIX)


def test_every_file_tool_comfy_names_exists():
    comfy = PYPROJECT["tool"]["comfy"]
    named = [comfy["Icon"], *comfy.get("includes", [])] + ([comfy["Banner"]] if comfy.get("Banner") else [])
    for reference in named:
        assert _local(reference).exists(), f"[tool.comfy] names {reference}, which is not in the repository"


def test_the_icon_is_a_square_png_within_the_registry_limit():
    icon = Image.open(_local(PYPROJECT["tool"]["comfy"]["Icon"]))
    assert icon.format == "PNG" and icon.width == icon.height and icon.width <= 400


@functools.cache
def _ignore_spec():
    """The rule exactly as comfy-cli's `comfy node pack` reads .comfyignore (comfy_cli/file_utils.py)."""
    lines = (ROOT / ".comfyignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return pathspec.PathSpec.from_lines("gitwildmatch", patterns)


@pytest.mark.parametrize("path", ["tests/conftest.py", ".ci/run", "benchmarks/gpu_check.py",
                                  "scripts/draw_icon.py", "docs/images/review_page.png", ".gitignore"])
def test_the_archive_leaves_out_development_files(path):
    assert _ignore_spec().match_file(path)


@pytest.mark.parametrize("path", ["__init__.py", "__main__.py", "core/data/atomic.py", "nodes/curate_node.py",
                                  "trainers/__main__.py", "web/review_tab.js", "workflows/api/x.json",
                                  "README.md", "LICENSE", "docs/icon.png",
                                  "docs/nodes.md", "requirements.txt", "install.py", "pyproject.toml"])
def test_the_archive_keeps_what_a_user_runs(path):
    assert not _ignore_spec().match_file(path)


def test_the_tracked_files_that_would_ship_are_only_the_users_files():
    try:
        tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: comfy node pack archives git-tracked files only")
    shipped = [path for path in tracked if not _ignore_spec().match_file(path)]
    assert {path.split("/")[0] for path in shipped} <= SHIPPED
    assert "docs/icon.png" in shipped and "LICENSE" in shipped
    assert not [path for path in shipped if path.startswith("docs/") and not path.endswith((".md", "icon.png"))]


def test_shipped_text_names_no_folder_of_a_development_machine():
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "workflows").rglob("*.json"),
             *(ROOT / "web").rglob("*.js")]
    offenders = [str(path.relative_to(ROOT)) for path in texts if "/work/" in path.read_text(encoding="utf-8")]
    assert offenders == []


def test_the_demos_output_folder_is_ignored_by_git():
    spec = pathspec.PathSpec.from_lines("gitwildmatch", (ROOT / ".gitignore").read_text().splitlines())
    assert spec.match_file("demo-out/reports/turn_report.json")
