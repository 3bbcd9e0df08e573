"""Loading Qwen-Image-Edit-2509: LoRAs with strengths, single-file transformers, clear errors, shared base."""

from __future__ import annotations

import pytest
from PIL import Image

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.data.images import pixel_hash
from flenwheel.core.enrich.enrich import EnrichSettings, edit_once
from flenwheel.core.models.loras import LoraSpec
from flenwheel.core.models.pipelines import LoadOptions
from flenwheel.core.models.qwen_edit_loader import load_qwen_edit, release_qwen_edit
from flenwheel.core.models.qwen_single_file import SingleFileError

CPU = LoadOptions(dtype="fp32", device="cpu")
FAST = EnrichSettings(steps=2, width=64, height=64, vae_pixels=64 * 64, condition_pixels=56 * 56)
PROMPT = "Replace the background with a forest. Keep the person exactly the same."


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    yield
    release_qwen_edit()


@pytest.fixture(scope="module")
def source_image():
    return Image.new("RGB", (64, 64), (150, 110, 90))


@pytest.fixture(scope="module")
def tiny_lora(tiny_qwen_edit, tmp_path_factory):
    """A peft LoRA for the tiny transformer, saved the way diffusers (and our trainer) save them."""
    import torch
    from diffusers import QwenImageEditPlusPipeline, QwenImageTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = QwenImageTransformer2DModel.from_pretrained(tiny_qwen_edit / "transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                       target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    folder = tmp_path_factory.mktemp("lora")
    layers = get_peft_model_state_dict(transformer)
    QwenImageEditPlusPipeline.save_lora_weights(folder, transformer_lora_layers=layers)
    return folder / "pytorch_lora_weights.safetensors"


def _edit(handle, image, seed=0):
    return pixel_hash(edit_once(handle, image, PROMPT, seed, FAST).image)


def test_lora_strength_changes_the_edit_and_zero_matches_the_base(tiny_qwen_edit, tiny_lora, source_image):
    base = load_qwen_edit(str(tiny_qwen_edit), options=CPU)
    base_edit = _edit(base, source_image)
    strong = load_qwen_edit(str(tiny_qwen_edit), options=CPU, loras=[LoraSpec(str(tiny_lora), 1.0)])
    assert strong.pipe is base.pipe, "changing LoRAs must not reload the base model"
    strong_edit = _edit(strong, source_image)
    weak = load_qwen_edit(str(tiny_qwen_edit), options=CPU, loras=[LoraSpec(str(tiny_lora), 0.5)])
    zero = load_qwen_edit(str(tiny_qwen_edit), options=CPU, loras=[LoraSpec(str(tiny_lora), 0.0)])
    assert strong_edit != base_edit
    assert _edit(weak, source_image) not in (base_edit, strong_edit)
    assert _edit(zero, source_image) == base_edit
    assert _edit(strong, source_image) == strong_edit, "each handle re-applies its own LoRA strengths"
    assert _edit(base, source_image) == base_edit
    record_loras = edit_once(strong, source_image, PROMPT, 0, FAST).fields["loras"]
    assert record_loras[0]["path"] == str(tiny_lora.resolve()) and record_loras[0]["strength"] == 1.0
    assert len(record_loras[0]["sha256"]) == 64


def test_loading_another_base_releases_the_old_one(tiny_qwen_edit, source_image):
    old = load_qwen_edit(str(tiny_qwen_edit), options=CPU)
    new = load_qwen_edit(str(tiny_qwen_edit), options=LoadOptions(dtype="fp16", device="cpu"))
    assert old.pipe is None and new.pipe is not None
    with pytest.raises(ModelLoadError, match="unloaded because another base model was loaded"):
        edit_once(old, source_image, PROMPT, 0, FAST)
    release_qwen_edit()
    assert new.pipe is None


def test_four_bit_on_cpu_fails_clearly_before_loading(tiny_qwen_edit, tmp_path):
    for options in (LoadOptions(dtype="bf16", device="cpu", quantize="nf4"),
                    LoadOptions(dtype="bf16", device="cpu", quantize_text_encoder="nf4")):
        with pytest.raises(ModelLoadError, match="nf4 quantisation needs an NVIDIA GPU.*device is cpu") as caught:
            load_qwen_edit(str(tiny_qwen_edit), options=options)
        assert "pick the memory options quantize=none and quantize_text_encoder=none" in str(caught.value)
        assert "with offload=model" in str(caught.value)
    transformer = tiny_qwen_edit / "transformer" / "diffusion_pytorch_model.safetensors"
    with pytest.raises(ModelLoadError, match="needs an NVIDIA GPU"):
        load_qwen_edit(str(tiny_qwen_edit), transformer, LoadOptions(device="cpu", quantize="nf4"))


def test_missing_paths_are_named(tiny_qwen_edit, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match=f"{missing} does not exist"):
        load_qwen_edit(str(missing), options=CPU)
    with pytest.raises(ModelLoadError, match="is not a diffusers pipeline folder"):
        load_qwen_edit(str(tmp_path), options=CPU)
    with pytest.raises(ModelLoadError, match="transformer checkpoint .*qwen.safetensors does not exist"):
        load_qwen_edit(str(tiny_qwen_edit), tmp_path / "qwen.safetensors", CPU)
    lora = LoraSpec(str(tmp_path / "angles.safetensors"), 1.25)
    with pytest.raises(ModelLoadError, match="LoRA file .*angles.safetensors does not exist"):
        load_qwen_edit(str(tiny_qwen_edit), options=CPU, loras=[lora])


def _transformer_weights(tiny_qwen_edit):
    from safetensors.torch import load_file

    return load_file(str(tiny_qwen_edit / "transformer" / "diffusion_pytorch_model.safetensors"))


def test_comfyui_single_file_transformer_gives_the_same_edit(tiny_qwen_edit, tmp_path, source_image):
    from safetensors.torch import save_file

    folder_edit = _edit(load_qwen_edit(str(tiny_qwen_edit), options=CPU), source_image)
    comfy_file = tmp_path / "qwen_image_edit_2509_tiny.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in _transformer_weights(tiny_qwen_edit).items()},
              str(comfy_file))
    handle = load_qwen_edit(str(tiny_qwen_edit), comfy_file, CPU)
    assert handle.options["transformer_file"] == str(comfy_file.resolve())
    result = edit_once(handle, source_image, PROMPT, 0, FAST)
    assert pixel_hash(result.image) == folder_edit
    assert result.fields["model"] == str(comfy_file.resolve())


def test_scaled_fp8_single_file_is_dequantised(tiny_qwen_edit, tmp_path):
    import torch
    from safetensors.torch import save_file

    weights = _transformer_weights(tiny_qwen_edit)
    name = "transformer_blocks.0.attn.to_q.weight"
    scale = weights[name].abs().max() / 448.0
    stored = (weights[name] / scale).to(torch.float8_e4m3fn)
    plain = "transformer_blocks.0.attn.to_k.weight"
    packed = dict(weights)
    packed.update({name: stored, name.replace(".weight", ".scale_weight"): scale.reshape(()),
                   plain: weights[plain].to(torch.float8_e4m3fn),
                   "scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)})
    file = tmp_path / "qwen_fp8_scaled.safetensors"
    save_file(packed, str(file))
    transformer = load_qwen_edit(str(tiny_qwen_edit), file, CPU).pipe.transformer
    loaded = transformer.state_dict()
    assert torch.equal(loaded[name], stored.to(torch.float32) * scale)
    assert torch.allclose(loaded[name], weights[name], rtol=0.1, atol=scale.item())
    assert loaded[plain].dtype == torch.float32


@pytest.mark.parametrize(("keys", "message"), [
    ({"double_blocks.0.img_attn.qkv.weight": [2, 2]}, "is a FLUX transformer"),
    ({"transformer.img_in.lora_A.weight": [2, 2]}, "is a LoRA, not a transformer"),
    ({"decoder.conv_in.weight": [2, 2]}, "is a VAE"),
    ({"something.else": [2]}, "is not a Qwen-Image transformer"),
])
def test_wrong_checkpoints_are_refused_with_what_they_are(tiny_qwen_edit, tmp_path, keys, message):
    import torch
    from safetensors.torch import save_file

    file = tmp_path / "wrong.safetensors"
    save_file({key: torch.zeros(shape) for key, shape in keys.items()}, str(file))
    with pytest.raises(SingleFileError, match=message):
        load_qwen_edit(str(tiny_qwen_edit), file, CPU)


def test_mismatched_or_unreadable_files_are_refused(tiny_qwen_edit, tmp_path):
    from safetensors.torch import save_file

    weights = _transformer_weights(tiny_qwen_edit)
    one_block = {k: v for k, v in weights.items() if not k.startswith("transformer_blocks.1.")}
    short = tmp_path / "short.safetensors"
    save_file(one_block, str(short))
    with pytest.raises(SingleFileError, match="weights missing.*file has 1 transformer blocks, the config 2"):
        load_qwen_edit(str(tiny_qwen_edit), short, CPU)
    truncated = tmp_path / "truncated.safetensors"
    original = tiny_qwen_edit / "transformer" / "diffusion_pytorch_model.safetensors"
    truncated.write_bytes(original.read_bytes()[:500])
    with pytest.raises(SingleFileError, match="not a readable safetensors file"):
        load_qwen_edit(str(tiny_qwen_edit), truncated, CPU)
    gguf = tmp_path / "qwen-image-edit-Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(SingleFileError, match="is a GGUF file.*safetensors checkpoints only"):
        load_qwen_edit(str(tiny_qwen_edit), gguf, CPU)


def test_newer_comfy_fp8_layout_single_file_is_dequantised(tiny_qwen_edit, tmp_path):
    """``<layer>.weight_scale`` + ``<layer>.comfy_quant`` (ComfyUI's mixed-precision files): fp8 x scale."""
    import json

    import torch
    from safetensors.torch import save_file

    weights = _transformer_weights(tiny_qwen_edit)
    name = "transformer_blocks.0.attn.to_q.weight"
    scale = weights[name].abs().max() / 448.0
    stored = (weights[name] / scale).to(torch.float8_e4m3fn)
    layer = name.removesuffix(".weight")
    packed = {f"model.diffusion_model.{k}": v for k, v in weights.items()}
    packed.update({f"model.diffusion_model.{name}": stored,
                   f"model.diffusion_model.{layer}.weight_scale": scale.reshape(()),
                   f"model.diffusion_model.{layer}.input_scale": torch.tensor(1.0),
                   f"model.diffusion_model.{layer}.comfy_quant": torch.tensor(
                       list(json.dumps({"format": "float8_e4m3fn"}).encode()), dtype=torch.uint8)})
    file = tmp_path / "qwen_image_edit_2509_fp8mixed.safetensors"
    save_file(packed, str(file))
    loaded = load_qwen_edit(str(tiny_qwen_edit), file, CPU).pipe.transformer.state_dict()
    assert torch.equal(loaded[name], stored.to(torch.float32) * scale)
