"""FLUX.2 [klein] and Qwen-Image-Edit-2511 tiny pipelines through the same loaders and engines as real weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.models.pipelines import LoadOptions

CPU = LoadOptions(dtype="fp32", device="cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_builders_write_diffusers_folders_with_the_family_specifics(tiny_flux2_klein, tiny_qwen_edit_2511):
    index = json.loads((tiny_flux2_klein / "model_index.json").read_text())
    assert index["_class_name"] == "Flux2KleinPipeline"
    assert index["vae"] == ["diffusers", "AutoencoderKLFlux2"]
    assert index["text_encoder"] == ["transformers", "Qwen3ForCausalLM"]
    transformer = json.loads((tiny_qwen_edit_2511 / "transformer" / "config.json").read_text())
    assert transformer["zero_cond_t"] is True
    assert json.loads((tiny_qwen_edit_2511 / "model_index.json").read_text())["_class_name"] == (
        "QwenImageEditPlusPipeline"
    )


def test_tiny_build_command_builds_the_new_families(tmp_path):
    from click.testing import CliRunner

    from flenwheel.cli import cli

    result = CliRunner().invoke(cli, ["tiny", "build", str(tmp_path), "--kind", "flux2-klein"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny-flux2-klein" / "model_index.json").is_file()
    assert "flux2-klein" in result.output


def test_klein_generates_through_the_generate_engine_reproducibly(tiny_flux2_klein):
    from flenwheel.core.generate.generate import generate_one
    from flenwheel.core.models.pipelines import load_pipeline

    handle = load_pipeline("flux2-klein", str(tiny_flux2_klein), options=CPU)
    assert type(handle.pipe).__name__ == "Flux2KleinPipeline"
    first = generate_one(handle, "photo of a person", seed=3, width=64, height=64, steps=2, guidance=4.0)
    again = generate_one(handle, "photo of a person", seed=3, width=64, height=64, steps=2, guidance=4.0)
    other = generate_one(handle, "photo of a person", seed=4, width=64, height=64, steps=2, guidance=4.0)
    assert first.image.size == (64, 64)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))
    assert first.fields["model"] == str(tiny_flux2_klein) and first.fields["guidance"] == 4.0
    negative = generate_one(handle, "photo of a person", seed=3, width=64, height=64, steps=2, guidance=4.0,
                            negative_prompt="blurry, low quality", true_cfg=4.0)
    assert not np.array_equal(np.asarray(first.image), np.asarray(negative.image))  # the negative acts via CFG
    assert negative.fields["negative_prompt"] == "blurry, low quality"


def test_a_klein_record_stores_only_the_cfg_the_pipeline_applied(tiny_flux2_klein):
    """klein's CFG strength is ``guidance`` (true_cfg does nothing), and at guidance 1 it drops the negative."""
    from flenwheel.core.generate.generate import generate_one
    from flenwheel.core.models.pipelines import load_pipeline

    handle = load_pipeline("flux2-klein", str(tiny_flux2_klein), options=CPU)
    run = dict(seed=3, width=64, height=64, steps=2)
    plain = generate_one(handle, "photo of a person", guidance=1.0, **run)
    dropped = generate_one(handle, "photo of a person", guidance=1.0, negative_prompt="blurry", true_cfg=4.0, **run)
    assert np.array_equal(np.asarray(plain.image), np.asarray(dropped.image)), "guidance 1: no CFG, no negative"
    assert "negative_prompt" not in dropped.fields and "true_cfg" not in dropped.fields
    strong = generate_one(handle, "photo of a person", guidance=4.0, negative_prompt="blurry", true_cfg=4.0, **run)
    weak = generate_one(handle, "photo of a person", guidance=4.0, negative_prompt="blurry", true_cfg=1.0, **run)
    assert np.array_equal(np.asarray(strong.image), np.asarray(weak.image)), "true_cfg is no setting of klein"
    assert strong.fields["negative_prompt"] == weak.fields["negative_prompt"] == "blurry"
    assert "true_cfg" not in strong.fields and strong.fields["guidance"] == 4.0
    unguided = generate_one(handle, "photo of a person", guidance=4.0, **run)
    assert not np.array_equal(np.asarray(unguided.image), np.asarray(weak.image)), "the negative acts at true_cfg 1"


def _edit(handle, image):
    from flenwheel.core.enrich.enrich import EnrichSettings, edit_once

    settings = EnrichSettings(steps=2, width=64, height=64, vae_pixels=64 * 64, condition_pixels=56 * 56)
    return edit_once(handle, image, "Replace the background with a forest.", 5, settings)


def test_2511_edits_through_enrichment_with_condition_tokens_at_timestep_zero(tiny_qwen_edit_2511):
    from flenwheel.core.models.qwen_edit_loader import load_qwen_edit, release_qwen_edit

    source = Image.new("RGB", (64, 64), (150, 110, 90))
    try:
        handle = load_qwen_edit(str(tiny_qwen_edit_2511), options=CPU)
        assert handle.pipe.transformer.zero_cond_t is True
        result = _edit(handle, source)
        assert result.image.size == (64, 64)
        assert result.fields["model"] == str(tiny_qwen_edit_2511)
        with_flag = np.asarray(result.image)
        for module in (handle.pipe.transformer, *handle.pipe.transformer.transformer_blocks):
            module.zero_cond_t = False
        assert not np.array_equal(with_flag, np.asarray(_edit(handle, source).image))
    finally:
        release_qwen_edit()


def test_comfyui_2511_single_file_marker_switches_a_2509_config_to_zero_cond_t(
    tiny_qwen_edit, tiny_qwen_edit_2511, tmp_path
):
    """ComfyUI's 2511 files carry ``__index_timestep_zero__``; with a 2509 folder for the VAE and
    text encoder, the transformer must still run 2511's rule."""
    from diffusers import QwenImageTransformer2DModel
    from safetensors.torch import save_file

    from flenwheel.core.models.qwen_single_file import load_qwen_transformer

    reference = QwenImageTransformer2DModel.from_pretrained(tiny_qwen_edit_2511, subfolder="transformer").eval()
    state = {f"model.diffusion_model.{k}": v.contiguous() for k, v in reference.state_dict().items()}
    file = tmp_path / "qwen_image_edit_2511_bf16.safetensors"
    save_file({**state, "model.diffusion_model.__index_timestep_zero__": torch.tensor([])}, str(file))
    loaded = load_qwen_transformer(file, str(tiny_qwen_edit), CPU, "cpu").eval()
    assert loaded.config.zero_cond_t is True
    gen = torch.Generator().manual_seed(0)
    inputs = {
        "hidden_states": torch.randn(1, 32, 16, generator=gen),
        "encoder_hidden_states": torch.randn(1, 7, 16, generator=gen),
        "timestep": torch.tensor([0.4]),
        "img_shapes": [[(1, 4, 4), (1, 4, 4)]],
        "return_dict": False,
    }
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs)[0], reference(**inputs)[0], atol=1e-6)
    save_file(state, str(file))  # the same weights without the marker: 2509's rule, another output
    plain = load_qwen_transformer(file, str(tiny_qwen_edit), CPU, "cpu").eval()
    assert plain.config.zero_cond_t is False
    with torch.no_grad():
        assert not torch.allclose(plain(**inputs)[0], reference(**inputs)[0], atol=1e-6)


@pytest.fixture(scope="module")
def klein_single_file(tiny_flux2_klein, tmp_path_factory):
    from diffusers import Flux2Transformer2DModel
    from safetensors.torch import save_file

    from flenwheel.core.testing.tiny_bases import flux2_to_bfl

    model = Flux2Transformer2DModel.from_pretrained(tiny_flux2_klein, subfolder="transformer")
    file = tmp_path_factory.mktemp("comfy") / "flux-2-klein-4b.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in flux2_to_bfl(model.state_dict()).items()}, str(file))
    return file


def test_klein_single_file_in_bfl_layout_generates_like_the_folder(tiny_flux2_klein, klein_single_file):
    from flenwheel.core.generate.generate import generate_one
    from flenwheel.core.models.pipelines import load_pipeline
    from flenwheel.core.models.registry import FLUX2_KLEIN
    from flenwheel.core.models.transformer_single_file import load_transformer_file

    transformer = load_transformer_file(FLUX2_KLEIN, klein_single_file, str(tiny_flux2_klein), CPU, "cpu")
    from_file = load_pipeline("flux2-klein", str(tiny_flux2_klein), options=CPU,
                              components={"transformer": transformer})
    from_folder = load_pipeline("flux2-klein", str(tiny_flux2_klein), options=CPU)
    images = [np.asarray(generate_one(h, "a photo", seed=2, width=64, height=64, steps=2, guidance=4.0).image)
              for h in (from_file, from_folder)]
    assert np.array_equal(images[0], images[1])


def test_klein_single_file_errors_name_the_file_and_the_fix(tiny_flux2_klein, klein_single_file, tmp_path):
    from safetensors.torch import load_file, save_file

    from flenwheel.core.models.qwen_single_file import SingleFileError
    from flenwheel.core.models.registry import FLUX2_KLEIN
    from flenwheel.core.models.transformer_single_file import load_transformer_file

    scaled = tmp_path / "flux-2-klein-4b-fp8.safetensors"
    state = load_file(str(klein_single_file))
    save_file({**state, "model.diffusion_model.img_in.weight_scale": torch.tensor(1.0)}, str(scaled))
    with pytest.raises(SingleFileError, match="scaled-fp8.*flux-2-klein-4b-fp8|flux-2-klein-4b-fp8.*scaled-fp8"):
        load_transformer_file(FLUX2_KLEIN, scaled, str(tiny_flux2_klein), CPU, "cpu")
    other = tmp_path / "not_flux2.safetensors"
    save_file({"txt_norm.weight": torch.ones(2)}, str(other))
    with pytest.raises(SingleFileError, match=r"not_flux2.safetensors is not a FLUX.2 \[klein\] transformer"):
        load_transformer_file(FLUX2_KLEIN, other, str(tiny_flux2_klein), CPU, "cpu")


def test_klein_generation_applies_loras_at_their_strength_and_none_reproduces_the_base(tiny_flux2_klein, tmp_path):
    from flenwheel.core.generate.generate import generate_one
    from flenwheel.core.models.loras import LoraSpec
    from flenwheel.core.models.pipelines import load_pipeline
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    lora = make_tiny_lora(tiny_flux2_klein, tmp_path / "klein_style.safetensors", scale=1.0)
    handle = load_pipeline("flux2-klein", str(tiny_flux2_klein), options=CPU)

    def render(h):
        return np.asarray(generate_one(h, "a photo", seed=2, width=64, height=64, steps=2, guidance=1.0).image)

    base = render(handle)
    full = render(handle.with_loras([LoraSpec(str(lora), 1.0)]))
    half = render(handle.with_loras([LoraSpec(str(lora), 0.5)]))
    assert not np.array_equal(base, full) and not np.array_equal(full, half)
    assert np.array_equal(render(handle), base)


def test_klein_quantisation_on_a_cpu_fails_before_loading(tiny_flux2_klein):
    from flenwheel.core.models.pipelines import load_pipeline

    with pytest.raises(ModelLoadError, match="needs an NVIDIA GPU"):
        load_pipeline("flux2-klein", str(tiny_flux2_klein),
                      options=LoadOptions(dtype="bf16", device="cpu", quantize="nf4"))


def test_models_command_lists_the_new_families_with_role_hub_id_and_memory():
    from click.testing import CliRunner

    from flenwheel.cli import cli

    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert "flux2-klein: FLUX.2 [klein], character\n  hub id: black-forest-labs/FLUX.2-klein-base-4B" in result.output
    assert "qwen-edit-2511: Qwen-Image-Edit-2511, editor\n  hub id: Qwen/Qwen-Image-Edit-2511" in result.output
    assert "3.9 B transformer, 4 B text encoder" in result.output
    assert "12 GB: load: quantize none, quantize_text_encoder none, offload model" in result.output  # klein 4B


def test_load_flux_node_loads_the_chosen_character_base(tiny_flux2_klein):
    from flenwheel.nodes import flux_node

    choices, options = flux_node.FlenwheelLoadFlux.INPUT_TYPES()["optional"]["base"]
    assert choices == ["flux", "flux2-klein", "z-image"] and options["default"] == "flux" and options["tooltip"]
    pick = flux_node.FROM_MODEL
    handle, description = flux_node.FlenwheelLoadFlux().load(
        str(tiny_flux2_klein), pick, pick, pick, pick, "fp32", "none", "none", "none", False, "cpu", base="flux2-klein"
    )
    assert handle.kind == "flux2-klein" and type(handle.pipe).__name__ == "Flux2KleinPipeline"
    with pytest.raises(ModelLoadError, match="takes only its transformer from a single file"):
        flux_node.FlenwheelLoadFlux().load(str(tiny_flux2_klein), pick, "ae.safetensors", pick, pick, "fp32",
                                           "none", "none", "none", False, "cpu", base="flux2-klein")


def test_training_nodes_offer_every_base_of_their_role_and_swap_the_default_hub_id():
    from flenwheel.nodes._training import base_source
    from flenwheel.nodes.train_node import FlenwheelTrainFluxLora, FlenwheelTrainQwenEditLora

    assert FlenwheelTrainFluxLora.INPUT_TYPES()["optional"]["base"][0] == ["flux", "flux2-klein", "z-image"]
    assert FlenwheelTrainQwenEditLora.INPUT_TYPES()["optional"]["base"][0] == ["qwen-edit", "qwen-edit-2511"]
    assert base_source("flux", "flux2-klein", "black-forest-labs/FLUX.1-dev") == (
        "flux2-klein", "black-forest-labs/FLUX.2-klein-base-4B")
    assert base_source("flux", "flux2-klein", "/models/klein-9b") == ("flux2-klein", "/models/klein-9b")
    assert base_source("qwen-edit", None, "") == ("qwen-edit", None)
