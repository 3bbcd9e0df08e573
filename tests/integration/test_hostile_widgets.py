"""Hostile widget values posted to a real ComfyUI's /prompt (see conftest.py; skipped without one).

Anyone who can reach ComfyUI can queue a graph, so every widget is attacker-controlled (issue 26).
Each graph here tries one escape - a project folder outside the allowed places, an item id or a
model card label that climbs out of the project, a folder of someone else's photos, a model
folder elsewhere, a pose interpreter - and must fail at the node that holds the value, with the
message naming what to change, while nothing appears outside ComfyUI's output/flenwheel folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.project import Project

pytestmark = pytest.mark.integration


def project_node(folder: str, create: bool = False) -> dict:
    return {"class_type": "FlenwheelProject",
            "inputs": {"project_dir": folder, "create_if_missing": create, "character_name": "Hostile probe",
                       "instance_token": "ohwx_char", "class_word": "person"}}


def items_node(label: str, step: str = "model_card") -> dict:
    return {"class_type": "FlenwheelFlywheelItems",
            "inputs": {"project": ["1", 0], "step": step, "base_seed": 0, "per_source": 1, "variants": 1,
                       "tries": 1, "families": "", "label": label}}


def preview(source: list) -> dict:
    return {"class_type": "PreviewAny", "inputs": {"source": source}}


def run_expecting_failure(comfyui, graph: dict, path: Path) -> str:
    """Queue through ``flenwheel comfy run``; the run must fail and its one-line message is returned."""
    path.write_text(json.dumps(graph), encoding="utf-8")
    result = CliRunner().invoke(cli, ["comfy", "run", str(path), "--server", comfyui.url, "--wait", "--json",
                                      "--timeout", os.environ.get("FLENWHEEL_COMFY_TIMEOUT", "300")])
    report = json.loads(result.stdout)
    assert result.exit_code != 0, f"ComfyUI ran the hostile graph: {report}"
    return report["message"]


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture
def probe(comfyui):
    """A project in the allowed place (output/flenwheel/hostile_probe) to aim the escapes from."""
    root = comfyui.base / "output" / "flenwheel" / "hostile_probe"
    if not (root / "flenwheel.json").exists():
        Project.init(root, name="Hostile probe")
    return root


@pytest.fixture
def outside():
    """A folder outside every allowed root (the test ComfyUI allows pytest's temp folders: conftest.py)."""
    folder = Path(tempfile.mkdtemp(prefix="flenwheel-hostile-"))
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("kind", ["relative", "absolute", "home"])
def test_a_project_folder_outside_the_allowed_places_is_refused(comfyui, tmp_path, outside, kind):
    output = comfyui.base / "output"
    folder = {"relative": os.path.relpath(outside / "project", output), "absolute": str(outside / "project"),
              "home": "~/flenwheel_hostile_probe"}[kind]
    before = files_under(output)
    graph = {"1": project_node(folder, create=True), "2": preview(["1", 1])}
    message = run_expecting_failure(comfyui, graph, tmp_path / "project.json")
    assert "FLENWHEEL_ALLOWED_ROOTS" in message and "FlenwheelProject" in message
    assert files_under(output) == before and files_under(outside) == set()
    assert not Path("~/flenwheel_hostile_probe").expanduser().exists()


def test_a_model_card_label_cannot_climb_out_of_the_project(comfyui, probe, tmp_path):
    before = files_under(comfyui.base / "output")
    graph = {"1": project_node(str(probe)), "2": items_node("../../../evil"), "3": preview(["2", 7])}
    message = run_expecting_failure(comfyui, graph, tmp_path / "label.json")
    assert "benchmark label '../../../evil' is not a name" in message
    assert files_under(comfyui.base / "output") == before


def test_an_item_id_cannot_save_into_another_folder(comfyui, probe, tmp_path):
    other = comfyui.base / "output" / "other_project"  # beside output/flenwheel: not an allowed place
    before = files_under(comfyui.base / "output")
    hostile = f"synthetic/{os.path.relpath(other / 'data' / 'synthetic' / 'v1', probe / 'data' / 'synthetic')}#k:0"
    graph = {
        "1": project_node(str(probe)),
        "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "3": {"class_type": "FlenwheelSaveFlywheelImages",
              "inputs": {"project": ["1", 0], "images": ["2", 0], "item_id": hostile, "identity_gate": "off",
                         "tolerance": 0.6, "max_retries": 2}},
    }
    message = run_expecting_failure(comfyui, graph, tmp_path / "item.json")
    assert "not a FLENwheel item id" in message or "item_id" in message
    assert files_under(comfyui.base / "output") == before and not other.exists()


def test_photos_and_models_from_elsewhere_are_refused(comfyui, probe, tmp_path, outside):
    secret = outside / "secret photos"
    secret.mkdir()
    curate = {"1": project_node(str(probe)),
              "2": {"class_type": "FlenwheelCurateSources",
                    "inputs": {"project": ["1", 0], "source_folder": str(secret), "angle": "unknown",
                               "expression": "unknown", "caption": "", "mirror": False, "skip_invalid": True}},
              "3": preview(["2", 2])}
    assert "FLENWHEEL_ALLOWED_ROOTS" in run_expecting_failure(comfyui, curate, tmp_path / "curate.json")
    model = outside / "models elsewhere" / "FLUX.1-dev"
    model.mkdir(parents=True)
    loader = {"1": {"class_type": "FlenwheelLoadFlux",
                    "inputs": {"model": str(model), "transformer": "(from model)", "vae": "(from model)",
                               "clip_l": "(from model)", "t5xxl": "(from model)", "dtype": "bf16",
                               "quantize": "none", "quantize_text_encoder": "none", "offload": "none",
                               "vae_tiling": False, "device": "auto"}},
              "2": {"class_type": "FlenwheelCharacterLora",
                    "inputs": {"flux": ["1", 0], "project": ["3", 0], "version": "latest", "strength": 1.0}},
              "3": project_node(str(probe)),
              "4": preview(["2", 1])}
    assert "FLENWHEEL_ALLOWED_ROOTS" in run_expecting_failure(comfyui, loader, tmp_path / "loader.json")
