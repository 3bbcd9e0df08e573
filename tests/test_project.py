"""Character projects: creation, opening, bad project files, versions."""

from __future__ import annotations

import json

import pytest

from flenwheel.core.data.errors import ProjectError
from flenwheel.core.data.project import LAYOUT, PROJECT_FILE, Project


def test_init_creates_the_seed_layout_and_project_file(tmp_path):
    project = Project.init(tmp_path / "char", name="Ada", instance_token="ohwx_ada", class_word="woman")
    for folder in LAYOUT:
        assert (tmp_path / "char" / folder).is_dir(), folder
    data = json.loads((tmp_path / "char" / PROJECT_FILE).read_text())
    assert data["name"] == "Ada"
    assert data["instance_token"] == "ohwx_ada"
    assert data["class_word"] == "woman"
    assert data["schema_version"] == 1
    assert project.subject == "ohwx_ada woman"


def test_init_refuses_an_existing_project_and_keeps_it(tmp_path):
    Project.init(tmp_path / "char", name="Ada")
    before = (tmp_path / "char" / PROJECT_FILE).read_bytes()
    with pytest.raises(ProjectError, match="already a FLENwheel project"):
        Project.init(tmp_path / "char", name="Other")
    assert (tmp_path / "char" / PROJECT_FILE).read_bytes() == before


def test_init_rejects_a_token_with_spaces(tmp_path):
    with pytest.raises(ProjectError, match="instance token must be one word"):
        Project.init(tmp_path / "char", name="Ada", instance_token="two words")
    assert not (tmp_path / "char" / PROJECT_FILE).exists()


def test_open_unknown_folder_says_how_to_create_it(tmp_path):
    with pytest.raises(ProjectError, match="does not exist.*flenwheel init"):
        Project.open(tmp_path / "missing")


def test_open_plain_folder_is_not_a_project(tmp_path):
    with pytest.raises(ProjectError, match="not a FLENwheel project"):
        Project.open(tmp_path)


def test_open_refuses_a_newer_schema(tmp_path):
    Project.init(tmp_path / "char", name="Ada")
    path = tmp_path / "char" / PROJECT_FILE
    data = json.loads(path.read_text())
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="schema_version 99.*upgrade"):
        Project.open(tmp_path / "char")


def test_open_reports_malformed_json_with_the_file(tmp_path):
    Project.init(tmp_path / "char", name="Ada")
    (tmp_path / "char" / PROJECT_FILE).write_text("{ not json")
    with pytest.raises(ProjectError, match="flenwheel.json is not valid JSON"):
        Project.open(tmp_path / "char")


def test_versions_sort_numerically_and_next_version_follows(project):
    assert project.latest_version("source") is None
    assert project.next_version("source") == "v1"
    for version in ("v1", "v2", "v10"):
        project.create_dataset("source", version)
    assert project.versions("source") == ["v1", "v2", "v10"]
    assert project.latest_version("source") == "v10"
    assert project.next_version("source") == "v11"


def test_unknown_stage_and_bad_version_names_are_errors(project):
    with pytest.raises(ProjectError, match="unknown dataset stage"):
        project.versions("raw")
    with pytest.raises(ProjectError, match="not a dataset version"):
        project.dataset("source", "version1")
    with pytest.raises(ProjectError, match="no source dataset yet"):
        project.dataset("source")


def test_current_versions_persist(tmp_path):
    project = Project.init(tmp_path / "char", name="Ada")
    project.set_current("flux_lora", "char_v2")
    assert Project.open(tmp_path / "char").config.current == {"flux_lora": "char_v2"}
