"""Nothing a queued graph, a file or a command says reaches outside the places the user allowed.

Each escape found against the landed code (issue 26) is tried the three ways in - the CLI, the node
(as ComfyUI calls it, with a stand-in ``folder_paths``) and the engine - and must be refused with one
line while the other project, the folder next door and the project itself stay byte for byte as they
were. The review routes' share is in ``tests/review/test_review_escapes.py``.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli
from flenwheel.core.data.dataset import DatasetVersion
from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.data.images import images_to_tensor
from flenwheel.core.data.project import Project, check_name, inside
from flenwheel.core.graph.items import plan_items
from flenwheel.core.graph.save import save_items
from flenwheel.nodes import _places
from flenwheel.nodes.native_node import FlenwheelFlywheelItems, FlenwheelSaveFlywheelImages


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: what "nothing changed on disk" compares."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def noise(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def two_projects(tmp_path):
    """Project A (the one the graph names) and project B beside it, B with a planned synthetic/v1."""
    a = Project.init(tmp_path / "A", name="A")
    b = Project.init(tmp_path / "B", name="B")
    plan = plan_items(b, "generate", families=["angles"], variants=1)
    return a, b, plan.items[0].id


def escapes(a: Project, b: Project, item: str) -> list[str]:
    """The item id of B's plan, rewritten to reach B from A: by ``..`` and by an absolute path."""
    stage, _, key = item.partition("/")[0], None, item.partition("#")[2]
    relative = os.path.relpath(b.root / "data" / stage / "v1", a.root / "data" / stage)
    return [f"{stage}/{relative}#{key}", f"{stage}/{b.root / 'data' / stage / 'v1'}#{key}"]


# Names are names ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["..", ".", "", "a/b", "../x", "/etc", ".hidden", "a\\b", "a b", "x" * 200, None])
def test_a_name_is_one_plain_path_part(text):
    with pytest.raises(FlenwheelError, match="is not a name"):
        check_name(text, "label")


def test_the_join_refuses_a_symlink_out_of_the_project(tmp_path):
    project = Project.init(tmp_path / "P", name="P")
    (tmp_path / "elsewhere").mkdir()
    (project.benchmarks_dir / "char_v1").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(FlenwheelError, match="leads outside the project"):
        project.benchmark_dir("char_v1")
    assert inside(project.root, "benchmarks", "char_v2") == project.root / "benchmarks" / "char_v2"


@pytest.mark.parametrize("version", ["../../../B/data/synthetic/v1", "/tmp/x/v1", "v1/../../v2", "v01", "latest"])
def test_a_dataset_version_is_vN_before_it_is_a_folder(tmp_path, version):
    project = Project.init(tmp_path / "P", name="P")
    with pytest.raises(FlenwheelError, match="not a dataset version"):
        DatasetVersion(project, "synthetic", version)


# Item ids: engine, CLI, node ----------------------------------------------------------------------
def test_an_item_id_cannot_save_into_another_project(two_projects):
    a, b, item = two_projects
    before_a, before_b = snapshot(a.root), snapshot(b.root)
    for hostile in escapes(a, b, item):
        with pytest.raises(FlenwheelError, match="not a FLENwheel item id") as caught:
            save_items(a, [noise(1)], [hostile])
        assert "\n" not in str(caught.value)
        with pytest.raises(FlenwheelError, match="not a FLENwheel item id"):
            FlenwheelSaveFlywheelImages().save([a], [images_to_tensor([noise(1)])], [hostile], ["off"], [0.6], [2])
    assert snapshot(a.root) == before_a and snapshot(b.root) == before_b


def test_the_cli_refuses_an_escaping_item_id_in_one_line(two_projects, tmp_path):
    a, b, item = two_projects
    noise(2).save(tmp_path / "img.png")
    before_a, before_b = snapshot(a.root), snapshot(b.root)
    for hostile in escapes(a, b, item):
        result = CliRunner().invoke(cli, ["items", "save", str(a.root), f"{hostile}={tmp_path / 'img.png'}"])
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert snapshot(a.root) == before_a and snapshot(b.root) == before_b


# Benchmark labels: engine, CLI, node --------------------------------------------------------------
@pytest.mark.parametrize("label", ["../../../evil", "/tmp/evil", "char_v1/../../x", ".hidden"])
def test_a_model_card_label_cannot_lead_outside_the_project(tmp_path, label):
    project = Project.init(tmp_path / "P", name="P")
    before = snapshot(tmp_path)
    with pytest.raises(FlenwheelError, match="benchmark label"):
        plan_items(project, "model_card", label=label)
    with pytest.raises(FlenwheelError, match="benchmark label"):
        FlenwheelFlywheelItems().plan(project, "model_card", 0, 4, 0, 1, "", label)
    result = CliRunner().invoke(cli, ["items", "plan", str(project.root), "--step", "model_card", "--label", label])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "benchmark label" in result.output
    assert snapshot(tmp_path) == before and not (tmp_path.parent / "evil").exists()


# Allowed places inside ComfyUI ------------------------------------------------------------------
@pytest.fixture
def comfyui(monkeypatch, tmp_path):
    """A stand-in for ComfyUI's ``folder_paths``: output folder and model folders under ``tmp_path/comfy``."""
    comfy = tmp_path / "comfy"
    folders = {name: comfy / "models" / name for name in _places.MODEL_FOLDERS}
    for folder in [comfy / "output", *folders.values()]:
        folder.mkdir(parents=True)

    def folder_paths_of(name):
        return [str(folders[name])]

    stand_in = types.SimpleNamespace(get_output_directory=lambda: str(comfy / "output"),
                                     get_input_directory=lambda: str(comfy / "input"),
                                     get_folder_paths=folder_paths_of, get_filename_list=lambda name: [],
                                     get_full_path_or_raise=lambda folder, name: str(folders[folder] / name))
    monkeypatch.setitem(sys.modules, "folder_paths", stand_in)
    monkeypatch.setattr(_places, "STARTUP_ROOTS", ())
    return comfy


def test_project_folders_stay_under_output_flenwheel(comfyui, tmp_path):
    from flenwheel.nodes.project_node import FlenwheelProject

    node = FlenwheelProject()
    project, _ = node.open("flenwheel/hero", True, "Hero", "ohwx_char", "person")
    assert project.root == comfyui / "output" / "flenwheel" / "hero"
    for hostile in ["../../outside", str(tmp_path / "outside"), "flenwheel/../../outside", "other"]:
        with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
            node.open(hostile, True, "Evil", "ohwx_char", "person")
    assert not (tmp_path / "outside").exists() and not (comfyui / "output" / "other").exists()


def test_a_root_allowed_at_start_is_taken(comfyui, tmp_path, monkeypatch):
    from flenwheel.nodes.project_node import FlenwheelProject

    extra = tmp_path / "big disk"
    roots = _places.roots_from_env({_places.ROOTS_ENV: f"{extra}{os.pathsep}relative/ignored"})
    assert roots == (extra,)
    monkeypatch.setattr(_places, "STARTUP_ROOTS", roots)
    project, _ = FlenwheelProject().open(str(extra / "hero"), True, "Hero", "ohwx_char", "person")
    assert (project.root / "flenwheel.json").is_file()


def test_the_cli_keeps_accepting_any_folder(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "anywhere" / "hero"), "--name", "Hero"])
    assert result.exit_code == 0 and (tmp_path / "anywhere" / "hero" / "flenwheel.json").is_file()


def test_widget_files_and_folders_outside_the_places_are_refused_before_reading(comfyui, tmp_path):
    from flenwheel.nodes.benchmark_node import FlenwheelModelCardBenchmark
    from flenwheel.nodes.curate_node import FlenwheelCurateSources
    from flenwheel.nodes.training_log_node import FlenwheelLoadTrainingLog

    project = Project.init(comfyui / "output" / "flenwheel" / "hero", name="Hero")
    secret = tmp_path / "secret"
    secret.mkdir()
    noise(3).save(secret / "photo.png")
    (secret / "card.yaml").write_text("tries: 1\n")
    before = snapshot(project.root)
    calls = [
        lambda: FlenwheelCurateSources().curate(project, str(secret), "unknown", "unknown", "", False, True),
        lambda: FlenwheelFlywheelItems().plan(project, "model_card", 0, 4, 0, 1, "", "char_v1",
                                              card_file=str(secret / "card.yaml")),
        lambda: FlenwheelFlywheelItems().plan(project, "generate", 0, 4, 1, 1, "", "char_v1",
                                              prompts_file="../../../secret/card.yaml"),
        lambda: FlenwheelLoadTrainingLog().load("flux", "latest", project, run_folder=str(secret)),
        lambda: FlenwheelModelCardBenchmark().benchmark(None, project, 1, "", "skip", card_file=str(secret / "x")),
    ]
    for call in calls:
        with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
            call()
    assert snapshot(project.root) == before


def test_photos_may_come_from_comfyui_input_folder(comfyui):
    from flenwheel.nodes.curate_node import FlenwheelCurateSources

    project = Project.init(comfyui / "output" / "flenwheel" / "hero", name="Hero")
    (comfyui / "input" / "uploads").mkdir(parents=True)
    noise(4).save(comfyui / "input" / "uploads" / "photo.png")
    FlenwheelCurateSources().curate(project, str(comfyui / "input" / "uploads"), "unknown", "unknown", "", False, True)
    assert len(project.dataset("source").records) == 1
    with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
        _places.project_folder(str(comfyui / "input" / "project"))


def test_a_graph_cannot_choose_the_pose_python(comfyui):
    with pytest.raises(FlenwheelError, match="FLENWHEEL_POSE_PYTHON"):
        _places.checked_python("/bin/sh")
    assert _places.checked_python("") is None


def test_model_paths_resolve_through_comfyui_model_folders_or_the_roots(comfyui, tmp_path):
    from flenwheel.nodes.flux_node import FROM_MODEL, FlenwheelLoadFlux
    from flenwheel.nodes.qwen_edit_loader_node import NO_FILE, FlenwheelQwenEditLoader

    outside = tmp_path / "not models" / "FLUX.1-dev"
    outside.mkdir(parents=True)
    (outside / "model_index.json").write_text("{}")
    with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
        FlenwheelLoadFlux().load(str(outside), FROM_MODEL, FROM_MODEL, FROM_MODEL, FROM_MODEL, "bf16", "none",
                                 "none", "none", False, "auto")
    with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
        FlenwheelQwenEditLoader().load(str(outside), NO_FILE, "bf16", "none", "none", "none", False)
    with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
        FlenwheelQwenEditLoader().load("Qwen/Qwen-Image-Edit-2509", NO_FILE, "bf16", "none", "none", "none",
                                       False, extra_loras=f"{tmp_path / 'evil.safetensors'}:1.0")
    inside_models = comfyui / "models" / "diffusers" / "FLUX.1-dev"
    assert _places.checked_model(str(inside_models)) == str(inside_models)
    assert _places.checked_model("black-forest-labs/FLUX.1-dev") == "black-forest-labs/FLUX.1-dev"


def test_a_training_config_from_a_widget_must_keep_its_paths_in_the_places(comfyui, tmp_path):
    from flenwheel.nodes.train_node import FlenwheelTrainFluxLora

    project = Project.init(comfyui / "output" / "flenwheel" / "hero", name="Hero")
    config = project.root / "mine.yaml"
    config.write_text(f"trainer: flux\nmodel: black-forest-labs/FLUX.1-dev\ndataset_path: data/source/v1\n"
                      f"output_path: {tmp_path / 'elsewhere'}\n")
    with pytest.raises(FlenwheelError, match="output_path in the training config"):
        FlenwheelTrainFluxLora().train(project, "black-forest-labs/FLUX.1-dev", "latest", config_path=str(config))
    with pytest.raises(FlenwheelError, match=_places.ROOTS_ENV):
        FlenwheelTrainFluxLora().train(project, "black-forest-labs/FLUX.1-dev", "latest",
                                       config_path=str(tmp_path / "config.yaml"))
    assert not (tmp_path / "elsewhere").exists()
