"""Z-Image through the same loaders, engines and commands as real weights: generation, LoRAs, ComfyUI's
single file, ``flenwheel models``, ``generate`` and ``train``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from flenwheel.core.models.pipelines import LoadOptions

CPU = LoadOptions(dtype="fp32", device="cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cli(*args):
    from flenwheel.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _render(handle, **extra):
    from flenwheel.core.generate.generate import generate_one

    settings = {"seed": 2, "width": 64, "height": 48, "steps": 2, "guidance": 4.0, **extra}
    return generate_one(handle, "photo of a person", **settings)


def test_tiny_builder_writes_a_z_image_folder_with_the_released_schedule(tiny_z_image):
    index = json.loads((tiny_z_image / "model_index.json").read_text())
    assert index["_class_name"] == "ZImagePipeline"
    assert index["text_encoder"] == ["transformers", "Qwen3Model"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    scheduler = json.loads((tiny_z_image / "scheduler" / "scheduler_config.json").read_text())
    assert (scheduler["shift"], scheduler["use_dynamic_shifting"]) == (3.0, False)
    transformer = json.loads((tiny_z_image / "transformer" / "config.json").read_text())
    assert transformer["n_layers"] == 2 and transformer["n_refiner_layers"] == 1


def test_generates_reproducibly_and_a_negative_prompt_acts_through_cfg(tiny_z_image):
    from flenwheel.core.generate.generate import generate_one
    from flenwheel.core.models.pipelines import load_pipeline

    handle = load_pipeline("z-image", str(tiny_z_image), options=CPU)
    assert type(handle.pipe).__name__ == "ZImagePipeline"
    first, again, other = _render(handle), _render(handle), _render(handle, seed=3)
    assert first.image.size == (64, 48)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))
    assert first.fields["model"] == str(tiny_z_image) and first.fields["guidance"] == 4.0
    negative = _render(handle, negative_prompt="blurry, low quality", true_cfg=4.0)
    assert not np.array_equal(np.asarray(first.image), np.asarray(negative.image))
    assert negative.fields["negative_prompt"] == "blurry, low quality"
    long = generate_one(handle, "photo of a person, " * 40, seed=2, width=64, height=48, steps=1, guidance=0.0)
    assert long.image.size == (64, 48)  # 512 caption tokens (the pipeline's cut) fit the position table


def test_generation_applies_loras_at_their_strength_and_none_reproduces_the_base(tiny_z_image, tmp_path):
    from flenwheel.core.models.loras import LoraSpec
    from flenwheel.core.models.pipelines import load_pipeline
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    lora = make_tiny_lora(tiny_z_image, tmp_path / "z_style.safetensors", scale=1.0)
    handle = load_pipeline("z-image", str(tiny_z_image), options=CPU)

    def render(h):
        return np.asarray(_render(h, guidance=0.0).image)  # Turbo's setting: no CFG

    base = render(handle)
    full = render(handle.with_loras([LoraSpec(str(lora), 1.0)]))
    half = render(handle.with_loras([LoraSpec(str(lora), 0.5)]))
    assert not np.array_equal(base, full) and not np.array_equal(full, half)
    assert np.array_equal(render(handle), base)


@pytest.fixture(scope="module")
def comfy_file(tiny_z_image, tmp_path_factory):
    """The tiny transformer as ComfyUI keeps Z-Image: fused qkv, its key names, its key prefix."""
    from diffusers import ZImageTransformer2DModel
    from safetensors.torch import save_file

    from flenwheel.core.testing.tiny_bases import z_image_to_comfy

    model = ZImageTransformer2DModel.from_pretrained(tiny_z_image, subfolder="transformer")
    file = tmp_path_factory.mktemp("comfy") / "z_image_turbo_bf16.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in z_image_to_comfy(model.state_dict()).items()}, str(file))
    return file


def test_comfyui_single_file_generates_like_the_folder(tiny_z_image, comfy_file):
    from flenwheel.core.models.character_base import load_character_base
    from flenwheel.core.models.flux_single_file import FluxFiles

    from_file = load_character_base("z-image", str(tiny_z_image), FluxFiles(transformer=str(comfy_file)), CPU)
    from_folder = load_character_base("z-image", str(tiny_z_image), options=CPU)
    assert from_file.options["files"]["transformer"] == str(comfy_file)
    images = [np.asarray(_render(handle).image) for handle in (from_file, from_folder)]
    assert np.array_equal(images[0], images[1])
    assert _render(from_file).fields["model"] == "z_image_turbo_bf16.safetensors"


def test_single_file_errors_name_the_file_and_the_fix(tiny_z_image, comfy_file, tmp_path):
    from diffusers import ZImageTransformer2DModel
    from safetensors.torch import load_file, save_file

    from flenwheel.core.models.qwen_single_file import SingleFileError
    from flenwheel.core.models.registry import Z_IMAGE
    from flenwheel.core.models.transformer_single_file import load_transformer_file

    def load(file):
        return load_transformer_file(Z_IMAGE, file, str(tiny_z_image), CPU, "cpu")

    scaled = tmp_path / "z_image_fp8_scaled.safetensors"
    save_file({**load_file(str(comfy_file)), "model.diffusion_model.x_embedder.weight_scale": torch.tensor(1.0)},
              str(scaled))
    with pytest.raises(SingleFileError, match="z_image_fp8_scaled.safetensors is a scaled-fp8 file"):
        load(scaled)
    diffusers_layout = tmp_path / "diffusion_pytorch_model.safetensors"
    model = ZImageTransformer2DModel.from_pretrained(tiny_z_image, subfolder="transformer")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(diffusers_layout))
    with pytest.raises(SingleFileError, match="in diffusers layout; load its folder instead"):
        load(diffusers_layout)
    other = tmp_path / "flux1-dev.safetensors"
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.ones(2, 2)}, str(other))
    with pytest.raises(SingleFileError, match="flux1-dev.safetensors is not a Z-Image transformer in ComfyUI layout"):
        load(other)


def test_models_lists_z_image_with_its_turbo_alias_and_memory():
    result = _cli("models")
    assert result.exit_code == 0, result.output
    assert "z-image (also: z-image-base, z-image-turbo): Z-Image, character\n  hub id: Tongyi-MAI/Z-Image" in (
        result.output)
    assert "z-image-turbo generates with: Tongyi-MAI/Z-Image-Turbo (LoRAs still train on Tongyi-MAI/Z-Image)" in (
        result.output)
    assert "6.15 B transformer, 4 B text encoder; transformer weights ~12 GB bf16" in result.output
    listed = {entry["name"]: entry for entry in json.loads(_cli("models", "--json").output)}
    assert listed["z-image"]["alias_hub_ids"] == {"z-image-turbo": "Tongyi-MAI/Z-Image-Turbo"}


def test_turbo_alias_generates_with_turbo_and_trains_on_base(project, noise_image):
    import yaml

    from flenwheel.core.models.registry import family

    turbo = family("z-image-turbo")
    assert turbo is family("z-image") and turbo.hub_id_for("z-image-turbo") == "Tongyi-MAI/Z-Image-Turbo"
    assert turbo.hub_id_for("z-image") == turbo.hub_id == "Tongyi-MAI/Z-Image"
    sources = project.create_dataset("source")
    with sources.edit() as edit:
        for index in range(2):
            edit.add_image(noise_image((64, 64), index), stem=f"s{index}", caption=f"photo of {project.subject}")
    result = _cli("train", "init", "z-image-turbo", project.root)
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((project.flux_lora_dir("v1") / "config.yaml").read_text())
    assert (config["trainer"], config["model"]) == ("z-image", "Tongyi-MAI/Z-Image")
    assert config["sample_guidance_scale"] == 4.0


def test_generate_command_renders_with_a_z_image_lora(project, tiny_z_image, tmp_path):
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    folder = project.flux_lora_dir("v1")
    folder.mkdir(parents=True)
    make_tiny_lora(tiny_z_image, folder / "char_lora_v1.safetensors", seed=1)
    result = _cli("generate", project.root, "--base", "z-image", "--model", tiny_z_image, "--lora", "char_v1",
                  "--dtype", "fp32", "--device", "cpu", "--width", 32, "--height", 32, "--steps", 2,
                  "--guidance", 0, "--prompt-ids", "front,t-pose", "--variants", 1, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert (report["dataset"], report["generated"]) == ("synthetic/v1", 2)
    records = project.dataset("synthetic").records
    assert {r.model for r in records} == {str(tiny_z_image)} and records[0].loras[0].path.endswith("v1.safetensors")
    wrong = _cli("generate", project.root, "--base", "qwen-edit", "--base-only", "--dry-run")
    assert wrong.exit_code == 2 and "qwen-edit" in wrong.output


def test_train_command_trains_a_versioned_z_image_lora(project, noise_image, tiny_z_image):
    from flenwheel.trainers.lora_io import read_metadata

    sources = project.create_dataset("source")
    with sources.edit() as edit:
        for index in range(2):
            edit.add_image(noise_image((64, 64), index), stem=f"s{index}", caption=f"photo of {project.subject}")
    tiny = ["--set", "mixed_precision=no", "--set", "bucket_step=16", "--set", "max_sequence_length=32",
            "--set", "gradient_checkpointing=false", "--set", "sample_every=0", "--set", "save_every=2"]
    init = _cli("train", "init", "z-image", project.root, "--model", tiny_z_image, "--steps", 2,
                "--resolution", 64, "--rank", 4, *tiny)
    assert init.exit_code == 0, init.output
    result = _cli("train", "z-image", "--config", project.flux_lora_dir("v1") / "config.yaml")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [e for e in events if e["event"] != "phase"][0]["event"] == "start" and events[-1]["event"] == "done"
    lora = project.flux_lora_dir("v1") / "char_lora_v1.safetensors"
    assert lora.is_file() and read_metadata(lora)["flenwheel.trainer"] == "z-image"
