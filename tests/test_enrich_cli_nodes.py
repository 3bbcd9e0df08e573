"""``flenwheel enrich`` and the Qwen-Edit loader / QwenEditEnrich nodes, inside a stand-in ComfyUI.

The stand-in provides exactly the ComfyUI functions the nodes call (folder_paths lookups, the
ProgressBar, model_management's device and interrupt flag), so the tests see what a ComfyUI user
would: LoRA dropdowns, progress with previews, and Cancel keeping the finished images.
"""

from __future__ import annotations

import json
import signal
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.models.qwen_edit_loader import release_qwen_edit
from flenwheel.nodes import load_nodes

FAST_ARGS = ["--dtype", "fp32", "--device", "cpu", "--steps", "2", "--width", "64", "--height", "64",
             "--vae-pixels", "4096", "--condition-pixels", "3136"]


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    yield
    release_qwen_edit()


@pytest.fixture
def sources(project):
    for index in range(3):
        rng = np.random.default_rng(index)
        image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
        add_sources(project, images=[(f"src{index}", image)], angle="front")
    return project


@pytest.fixture
def no_identity_engine(monkeypatch):
    monkeypatch.setitem(sys.modules, "flenwheel.core.identity.identity", None)


def run_cli(*args):
    return CliRunner().invoke(cli, ["enrich", *map(str, args)], catch_exceptions=False)


def test_cli_enriches_resumes_and_reports(sources, tiny_qwen_edit, no_identity_engine):
    result = run_cli(sources.root, "--model", tiny_qwen_edit, *FAST_ARGS, "--per-source", "4", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["edits"] == 12 and report["added"] == 12 and report["count_passed"] is True
    assert report["identity_checked"] == 0 and "identity gate off" in result.output
    records = sources.dataset("enriched").records
    assert len(records) == 12 and records[0].model == str(tiny_qwen_edit)
    again = run_cli(sources.root, "--model", tiny_qwen_edit, *FAST_ARGS, "--per-source", "4")
    assert again.exit_code == 0 and "0 new edits, 12 already done" in again.output
    assert "PASS count: 12 edits + 3 sources = 15 images" in again.output


def test_cli_first_ctrl_c_stops_after_the_current_image(sources, tiny_qwen_edit, no_identity_engine,
                                                        monkeypatch):
    import flenwheel.core.enrich.qwen_edit as qwen_edit

    original = qwen_edit.edit_once
    calls = []

    def edit_then_interrupt(*args, **kwargs):
        calls.append(1)
        result = original(*args, **kwargs)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(qwen_edit, "edit_once", edit_then_interrupt)
    args = [sources.root, "--model", tiny_qwen_edit, *FAST_ARGS, "--per-source", "2", "--gate", "off"]
    stopped = run_cli(*args)
    assert stopped.exit_code == 130 and "stopped: 2 of 6 edits are on disk" in stopped.output
    assert len(sources.dataset("enriched").records) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = run_cli(*args)
    assert resumed.exit_code == 0 and "4 new edits, 2 already done" in resumed.output


def test_cli_dry_run_prints_the_plan_without_a_model(sources):
    result = run_cli(sources.root, "--model", "/nowhere/at/all", "--per-source", "3", "--lora",
                     "/loras/Qwen-Edit-2509-Multiple-angles.safetensors:1.25", "--dry-run")
    assert result.exit_code == 0, result.output
    families = "background, lighting, style, camera_angle, multiple_angles"
    assert f"9 edits of 3 sources; families: {families}" in result.output
    assert "将镜头" in result.output and "seed " in result.output
    assert not sources.versions("enriched")


@pytest.mark.parametrize(("extra", "message"), [
    (["--quant", "nf4"], "nf4 quantisation needs an NVIDIA GPU"),
    (["--gate", "on"], "identity gate was asked for (gate=on) but cannot run"),
    (["--family", "hats"], "unknown edit family 'hats'"),
    (["--width", "70"], "multiples of 16"),
])
def test_cli_errors_are_one_clear_line(sources, tiny_qwen_edit, no_identity_engine, extra, message):
    result = run_cli(sources.root, "--model", tiny_qwen_edit, *FAST_ARGS, *extra)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_cli_missing_model_and_usage_errors(sources, tmp_path):
    missing = tmp_path / "Qwen-Image-Edit-2509"
    result = run_cli(sources.root, "--model", missing, "--gate", "off", "--device", "cpu", "--dtype", "fp32")
    assert result.exit_code == 1 and f"{missing} does not exist" in result.output
    both = run_cli(sources.root, "--reference", tmp_path / "a.png", "--reference-other-source")
    assert both.exit_code == 2 and "either --reference or --reference-other-source" in both.output


class Interrupted(Exception):
    """Stands in for ComfyUI's InterruptProcessingException."""


@pytest.fixture
def comfy(monkeypatch, tmp_path, tiny_qwen_edit):
    """Just enough of ComfyUI for the nodes: model folders, ProgressBar, device and interrupt flag."""
    folders = {name: tmp_path / "models" / name for name in ("loras", "diffusion_models", "diffusers")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    (folders["diffusers"] / "Qwen-Image-Edit-2509").symlink_to(tiny_qwen_edit, target_is_directory=True)
    state = types.SimpleNamespace(bars=[], interrupt_after=None, previews=0, unloaded=0)

    def full_path(folder, name):
        path = folders[folder] / name
        if not path.is_file():
            raise FileNotFoundError(f"{name} not in {folder}")
        return str(path)

    folder_paths = types.SimpleNamespace(
        get_filename_list=lambda folder: sorted(p.name for p in folders[folder].iterdir() if p.is_file()),
        get_full_path_or_raise=full_path, get_folder_paths=lambda folder: [str(folders[folder])],
        get_output_directory=lambda: str(tmp_path / "output"))

    class ProgressBar:
        def __init__(self, total):
            self.updates = []
            state.bars.append(self)

        def update_absolute(self, value, total, preview=None):
            self.updates.append((value, total, preview))
            state.previews += preview is not None

    def interrupted():
        return state.interrupt_after is not None and state.previews >= state.interrupt_after

    def throw():
        if interrupted():
            raise Interrupted

    management = types.SimpleNamespace(
        get_torch_device=lambda: "cpu", processing_interrupted=interrupted,
        throw_exception_if_processing_interrupted=throw, soft_empty_cache=lambda: None,
        unload_all_models=lambda: setattr(state, "unloaded", state.unloaded + 1))
    package = types.ModuleType("comfy")
    package.utils = types.SimpleNamespace(ProgressBar=ProgressBar)
    package.model_management = management
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    monkeypatch.setitem(sys.modules, "comfy", package)
    monkeypatch.setitem(sys.modules, "comfy.utils", package.utils)
    monkeypatch.setitem(sys.modules, "comfy.model_management", management)
    state.folders = folders
    return state


@pytest.fixture(scope="module")
def nodes():
    classes, _ = load_nodes()
    return classes


def _loader_args(**changes):
    args = {"model": "Qwen-Image-Edit-2509", "transformer_file": "(use the model's own transformer)",
            "dtype": "fp32", "quantize": "none", "quantize_text_encoder": "none", "offload": "none",
            "vae_tiling": False, "lora_1": "None", "strength_1": 1.0, "lora_2": "None", "strength_2": 1.0,
            "lora_3": "None", "strength_3": 1.0}
    return {**args, **changes}


def _enrich_args(project, pipeline, **changes):
    args = {"project": project, "qwen_edit": pipeline, "per_source": 2, "base_seed": 0, "steps": 2,
            "true_cfg": 4.0, "families": "", "identity_gate": "off", "tolerance": 0.6, "max_retries": 2,
            "width": 64, "height": 64, "megapixels": 1.0, "reference_mode": "none", "condition_pixels": 3136,
            "vae_pixels": 4096}
    return {**args, **changes}


def test_every_input_has_a_tooltip_and_the_nodes_describe_themselves(nodes, comfy):
    for name in ("FlenwheelQwenEditLoader", "FlenwheelQwenEditEnrich"):
        node = nodes[name]
        assert node.DESCRIPTION and node.CATEGORY.startswith("FLENwheel/")
        for section in node.INPUT_TYPES().values():
            for input_name, (_, options) in section.items():
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_loader_node_uses_comfyui_folders_and_lora_dropdowns(nodes, comfy, tiny_qwen_edit):
    import torch
    from safetensors.torch import save_file

    lora = comfy.folders["loras"] / "Qwen-Edit-2509-Multiple-angles.safetensors"
    save_file({"transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 48),
               "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(48, 4)}, str(lora))
    loader = nodes["FlenwheelQwenEditLoader"]
    assert lora.name in loader.INPUT_TYPES()["required"]["lora_1"][0]
    release_qwen_edit()
    handle, description = loader().load(**_loader_args(lora_1=lora.name, strength_1=1.25))
    assert handle.source == str((comfy.folders["diffusers"] / "Qwen-Image-Edit-2509").resolve())
    assert handle.device == "cpu" and handle.loras[0]["strength"] == 1.25
    assert "Qwen-Edit-2509-Multiple-angles.safetensors @ 1.25" in description
    assert comfy.unloaded == 1, "ComfyUI's models are unloaded before the base model loads"
    weaker, _ = loader().load(**_loader_args(lora_1=lora.name, strength_1=0.5))
    assert weaker.pipe is handle.pipe and comfy.unloaded == 1, "a strength change must not reload the base"
    with pytest.raises(FileNotFoundError, match="gone.safetensors"):
        loader().load(**_loader_args(lora_2="gone.safetensors"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        loader().load(**_loader_args(model=str(comfy.folders["diffusers"] / "missing")))


def test_enrich_node_outputs_images_dataset_and_summary_with_previews(nodes, comfy, sources):
    pipeline, _ = nodes["FlenwheelQwenEditLoader"]().load(**_loader_args())
    images, dataset, summary = nodes["FlenwheelQwenEditEnrich"]().run(**_enrich_args(sources, pipeline))
    assert tuple(images.shape) == (6, 64, 64, 3) and dataset.label == "enriched/v1" and len(dataset) == 6
    assert "FAIL count: 6 edits + 3 sources = 9 images (target >= 5x sources = 15)" in summary
    assert "identity not checked" in summary and "spread:" in summary and "this run: 6 new" in summary
    updates = comfy.bars[0].updates
    assert updates[-1][:2] == (6, 6) and sum(1 for u in updates if u[2] is not None) == 6
    assert updates[-1][2][0] == "JPEG" and isinstance(updates[-1][2][1], Image.Image)


def test_enrich_node_cancel_keeps_finished_images_and_resumes(nodes, comfy, sources):
    pipeline, _ = nodes["FlenwheelQwenEditLoader"]().load(**_loader_args())
    comfy.interrupt_after = 2
    with pytest.raises(Interrupted):
        nodes["FlenwheelQwenEditEnrich"]().run(**_enrich_args(sources, pipeline, per_source=1))
    assert len(sources.dataset("enriched").records) == 2
    comfy.interrupt_after = None
    node = nodes["FlenwheelQwenEditEnrich"]()
    _, dataset, summary = node.run(**_enrich_args(sources, pipeline, per_source=1))
    assert len(dataset) == 3 and "this run: 1 new, 2 resumed" in summary


def test_enrich_node_reference_image_input(nodes, comfy, sources):
    import torch

    pipeline, _ = nodes["FlenwheelQwenEditLoader"]().load(**_loader_args())
    reference = torch.rand(1, 64, 64, 3)
    _, dataset, _ = nodes["FlenwheelQwenEditEnrich"]().run(
        **_enrich_args(sources, pipeline, per_source=1, families="style"), reference=reference)
    records = dataset.records()
    assert len(records) == 3 and all(r.model_extra["family"] == "style" for r in records)
    assert all("Picture 2" in r.prompt and r.model_extra["reference_file"] for r in records)
