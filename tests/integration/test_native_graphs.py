"""Native ComfyUI graphs feed the flywheel, inside a real ComfyUI (see conftest.py; skipped without one).

A graph of ComfyUI's own image nodes between Flywheel Items and Save Flywheel Images fills an
enriched version that ``flenwheel verify`` accepts and the review page lists, and queueing it again
writes nothing twice. The native templates need real model files to run, so here they only have
to pass ComfyUI's own prompt validation, against model files laid out under the names their notes
give (empty files: validation only checks that the names are in the folder lists).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli
from flenwheel.comfy_tools.workflow_format import load_workflow
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.project import Project

pytestmark = pytest.mark.integration

PACK_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = PACK_ROOT / "workflows"

NATIVE_TEMPLATES = sorted((WORKFLOWS / "api").glob("* your own *.json"))
MODEL_FOLDERS = {"UNETLoader": ("diffusion_models", "unet_name"), "LoraLoaderModelOnly": ("loras", "lora_name"),
                 "DualCLIPLoader": ("text_encoders", "clip_name1", "clip_name2"),
                 "CLIPLoader": ("text_encoders", "clip_name"), "VAELoader": ("vae", "vae_name")}


def native_graph(project_dir: Path) -> dict:
    """Items (one edit per source) -> source image and a loaded photo, scaled and blended -> Save."""
    return {
        "1": {"class_type": "FlenwheelProject",
              "inputs": {"project_dir": str(project_dir), "create_if_missing": False, "character_name": "Native probe",
                         "instance_token": "ohwx_char", "class_word": "person"}},
        "2": {"class_type": "FlenwheelFlywheelItems",
              "inputs": {"project": ["1", 0], "step": "enrich", "base_seed": 0, "per_source": 1, "variants": 0,
                         "tries": 0, "families": "lighting", "label": "char_v1"}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "native_overlay.png"}},
        "4": {"class_type": "ImageScale", "inputs": {"image": ["3", 0], "upscale_method": "bilinear",
                                                     "width": 64, "height": 64, "crop": "center"}},
        "5": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bilinear",
                                                     "width": 64, "height": 64, "crop": "center"}},
        "6": {"class_type": "ImageBlend", "inputs": {"image1": ["5", 0], "image2": ["4", 0], "blend_factor": 0.3,
                                                     "blend_mode": "normal"}},
        "7": {"class_type": "FlenwheelSaveFlywheelImages",
              "inputs": {"project": ["1", 0], "images": ["6", 0], "item_id": ["2", 3], "identity_gate": "off",
                         "tolerance": 0.6, "max_retries": 2}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": ["7", 1]}},
        "9": {"class_type": "PreviewAny", "inputs": {"source": ["2", 7]}},
    }


def run_graph(comfyui, graph: dict, path: Path) -> dict:
    """Run through ``flenwheel comfy run``; the text each node printed, by node id."""
    path.write_text(json.dumps(graph), encoding="utf-8")
    result = CliRunner().invoke(cli, ["comfy", "run", str(path), "--server", comfyui.url, "--wait", "--json",
                                      "--timeout", os.environ.get("FLENWHEEL_COMFY_TIMEOUT", "600")])
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["message"]
    return {node: " ".join(map(str, out.get("text", []))) for node, out in report["outputs"].items()}


def test_native_image_nodes_fill_a_dataset_that_verify_and_review_accept(comfyui, faces, tmp_path):
    root = comfyui.base / "output" / "flenwheel" / "native_probe"
    project = Project.init(root, name="Native probe")
    photos = sorted((faces / "obama").glob("*.jpg"))[:2]
    assert len(add_sources(project, photos).added) == 2
    (comfyui.base / "input").mkdir(exist_ok=True)
    Image.new("RGB", (80, 60), (200, 40, 40)).save(comfyui.base / "input" / "native_overlay.png")
    printed = run_graph(comfyui, native_graph(root), tmp_path / "native.json")
    assert "enriched/v1: 2 saved, 0 already there" in printed["8"]
    dataset = project.dataset("enriched", "v1")
    records = dataset.records
    sources = {r.id for r in project.dataset("source").records}
    assert len(records) == 2 and {r.parents[0] for r in records} == sources
    assert all(r.prompt and r.seed is not None and r.model_extra["family"] == "lighting" for r in records)
    with Image.open(dataset.image_path(records[0])) as png:
        assert json.loads(png.text["prompt"])["7"]["class_type"] == "FlenwheelSaveFlywheelImages"
    verified = CliRunner().invoke(cli, ["verify", str(root), "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"], verified.stdout
    listed = comfyui.get_json("/api/flenwheel/review/projects")["projects"]
    key = next(p["key"] for p in listed if p["name"] == "Native probe")
    datasets = comfyui.get_json(f"/api/flenwheel/review/{key}/datasets")["datasets"]
    assert {(d["stage"], d["version"], d["total"]) for d in datasets} >= {("enriched", "v1", 2)}
    items = comfyui.get_json(f"/api/flenwheel/review/{key}/items?stage=enriched&version=v1")["items"]
    assert {item["id"] for item in items} == {r.id for r in records}
    again = run_graph(comfyui, native_graph(root), tmp_path / "native_again.json")
    assert "nothing left to make" in again["9"] and len(dataset.records) == 2


def lay_out_model_files(comfyui, workflow: dict) -> None:
    """Empty files under the names the template's loaders ask for, in the folders ComfyUI reads."""
    for node in workflow.values():
        folder, *names = MODEL_FOLDERS.get(node["class_type"], (None,))
        for name in names:
            target = comfyui.base / "models" / folder / node["inputs"][name]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()


@pytest.mark.parametrize("path", NATIVE_TEMPLATES, ids=[p.name for p in NATIVE_TEMPLATES])
def test_native_template_passes_comfyui_prompt_validation(comfyui, path, tmp_path):
    workflow = load_workflow(path)
    lay_out_model_files(comfyui, workflow)
    project = next(node for node in workflow.values() if node["class_type"] == "FlenwheelProject")
    project["inputs"]["project_dir"] = str(tmp_path / "no_project_here")
    body = json.dumps({"prompt": workflow, "client_id": "native-validation"}).encode()
    request = urllib.request.Request(comfyui.url + "/prompt", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        pytest.fail(f"ComfyUI refused {path.name}: {exc.read()[:2000]!r}")
    assert answer.get("prompt_id") and not answer.get("node_errors"), answer
