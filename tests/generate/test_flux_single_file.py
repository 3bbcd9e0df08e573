"""FLUX from ComfyUI-style single files: the tiny model written in BFL/LDM layouts and read back."""

from __future__ import annotations

import pytest
import torch

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.generate.generate import generate_one, model_label
from flenwheel.core.models.flux_single_file import (
    FluxFiles,
    bfl_to_diffusers,
    diffusers_to_bfl,
    load_flux,
    load_transformer,
)
from flenwheel.core.models.pipelines import LoadOptions
from flenwheel.core.models.single_file_tensors import widen

CPU = LoadOptions(dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def comfy_files(tiny_flux, tmp_path_factory) -> FluxFiles:
    from flenwheel.core.testing.tiny_comfy_files import export_flux_files

    return export_flux_files(tiny_flux, tmp_path_factory.mktemp("comfy_models"))


def render(handle):
    return generate_one(handle, "photo of ohwx_char person", seed=2, width=32, height=32, steps=2).image


def test_single_files_load_the_same_model_as_the_folder(tiny_flux, comfy_files):
    from safetensors import safe_open

    with safe_open(comfy_files.transformer, "pt") as f:
        assert (
            "double_blocks.0.img_attn.qkv.weight" in f.keys() and "single_blocks.0.linear1.weight" in f.keys()
        )
    with safe_open(comfy_files.vae, "pt") as f:
        assert "decoder.up.0.block.0.conv1.weight" in f.keys() and "encoder.mid.attn_1.q.weight" in f.keys()
    handle, folder_handle = (
        load_flux(str(tiny_flux), comfy_files, CPU),
        load_flux(str(tiny_flux), options=CPU),
    )
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        ours, folder = getattr(handle.pipe, part).state_dict(), getattr(folder_handle.pipe, part).state_dict()
        assert set(ours) == set(folder) and all(torch.equal(ours[k], folder[k]) for k in folder), part
    assert render(handle).tobytes() == render(folder_handle).tobytes()
    assert handle.options["files"]["transformer"] == comfy_files.transformer
    assert model_label(handle) == "flux1-tiny.safetensors"


def test_transformer_under_a_checkpoint_prefix_with_other_parts(tiny_flux, comfy_files, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = {f"model.diffusion_model.{k}": v for k, v in load_file(comfy_files.transformer).items()}
    tensors["first_stage_model.decoder.conv_in.weight"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "all_in_one.safetensors"))
    handle = load_flux(str(tiny_flux), FluxFiles(transformer=str(tmp_path / "all_in_one.safetensors")), CPU)
    assert handle.pipe.transformer.x_embedder.weight.shape[0] == 32


def _flux1_rows() -> dict[str, int]:
    """Row counts of every FLUX.1-dev transformer tensor in BFL layout (one double, one single block)."""
    inner, mlp, head = 3072, 12288, 128
    rows = {
        f"{name}.{p}": inner
        for name in (
            "time_in.in_layer",
            "time_in.out_layer",
            "vector_in.in_layer",
            "vector_in.out_layer",
            "guidance_in.in_layer",
            "guidance_in.out_layer",
            "txt_in",
            "img_in",
        )
        for p in ("weight", "bias")
    }
    for side in ("img", "txt"):
        for name, size in (
            (f"{side}_mod.lin", 6 * inner),
            (f"{side}_attn.qkv", 3 * inner),
            (f"{side}_attn.proj", inner),
            (f"{side}_mlp.0", mlp),
            (f"{side}_mlp.2", inner),
        ):
            rows.update({f"double_blocks.0.{name}.{p}": size for p in ("weight", "bias")})
        rows.update({f"double_blocks.0.{side}_attn.norm.{n}_norm.scale": head for n in ("query", "key")})
    for name, size in (("modulation.lin", 3 * inner), ("linear1", 3 * inner + mlp), ("linear2", inner)):
        rows.update({f"single_blocks.0.{name}.{p}": size for p in ("weight", "bias")})
    rows.update({f"single_blocks.0.norm.{n}_norm.scale": head for n in ("query", "key")})
    rows.update({f"final_layer.linear.{p}": 64 for p in ("weight", "bias")})
    rows.update({f"final_layer.adaLN_modulation.1.{p}": 2 * inner for p in ("weight", "bias")})
    return rows


def test_bfl_conversion_agrees_with_diffusers_on_flux1_geometry():
    """diffusers' own converter only knows FLUX.1's width; on that width both must give the same tensors."""
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    offset, checkpoint = 0, {}
    for key, rows in sorted(_flux1_rows().items()):
        checkpoint[key] = torch.arange(offset, offset + rows, dtype=torch.float64).unsqueeze(1)
        offset += rows
    ours = bfl_to_diffusers(dict(checkpoint))
    theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(checkpoint))
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in theirs)
    back = diffusers_to_bfl(ours)
    assert set(back) == set(checkpoint) and all(torch.equal(back[k], checkpoint[k]) for k in checkpoint)


def test_fp8_and_comfy_scaled_fp8_weights_are_upcast():
    weight = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    state = {
        "a.weight": weight.to(torch.float8_e4m3fn),
        "a.scale_weight": torch.tensor(0.5),
        "a.scale_input": torch.tensor(1.0),
        "scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn),
        "model.diffusion_model.scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn),
        "b.weight": weight.to(torch.float8_e4m3fn),
        "ids": torch.tensor([1, 2]),
    }
    out = widen(state, torch.bfloat16)
    assert set(out) == {"a.weight", "b.weight", "ids"}
    assert (
        torch.equal(out["a.weight"], (weight * 0.5).to(torch.bfloat16))
        and out["b.weight"].dtype == torch.bfloat16
    )
    assert out["ids"].dtype == torch.int64


def test_fp16_text_encoder_files_load_in_the_chosen_dtype(tiny_flux, comfy_files, tmp_path):
    from safetensors.torch import load_file, save_file

    half = tmp_path / "t5xxl_fp16.safetensors"
    save_file({k: v.half() for k, v in load_file(comfy_files.t5).items()}, str(half))
    handle = load_flux(str(tiny_flux), FluxFiles(t5=str(half)), CPU)
    assert handle.pipe.text_encoder_2.shared.weight.dtype == torch.float32
    assert handle.pipe.text_encoder_2.encoder.embed_tokens.weight is handle.pipe.text_encoder_2.shared.weight


@pytest.mark.parametrize(
    ("part", "pick", "message"),
    [
        ("transformer", "vae", "not a FLUX transformer"),
        ("t5", "clip_l", "not a T5-XXL text encoder"),
        ("clip_l", "t5", "not a CLIP-L text encoder"),
    ],
)
def test_the_wrong_file_for_a_part_is_named(tiny_flux, comfy_files, part, pick, message):
    wrong = getattr(comfy_files, pick)
    with pytest.raises(ModelLoadError, match=message) as info:
        load_flux(str(tiny_flux), FluxFiles(**{part: wrong}), CPU)
    assert wrong in str(info.value)


def test_unreadable_or_unsupported_files_fail_clearly(tiny_flux, comfy_files, tmp_path):
    truncated = tmp_path / "flux1-dev.safetensors"
    data = open(comfy_files.transformer, "rb").read()
    truncated.write_bytes(data[: len(data) // 3])
    cases = {str(truncated): "truncated", str(tmp_path / "missing.safetensors"): "does not exist"}
    (tmp_path / "flux1-dev-Q8_0.gguf").write_bytes(b"GGUF")
    cases[str(tmp_path / "flux1-dev-Q8_0.gguf")] = "GGUF files are not supported"
    (tmp_path / "model.ckpt").write_bytes(b"x")
    cases[str(tmp_path / "model.ckpt")] = "pickled checkpoints"
    for path, message in cases.items():
        with pytest.raises(ModelLoadError, match=message) as info:
            load_flux(str(tiny_flux), FluxFiles(transformer=path), CPU)
        assert path in str(info.value)


def test_quantisation_on_cpu_and_quantised_t5_file_are_refused(tiny_flux, comfy_files):
    with pytest.raises(ModelLoadError, match="NVIDIA GPU"):
        load_flux(
            str(tiny_flux),
            FluxFiles(transformer=comfy_files.transformer),
            LoadOptions(dtype="fp32", device="cpu", quantize="nf4"),
        )
    with pytest.raises(ModelLoadError, match="T5 loaded from a single file"):
        load_flux(
            str(tiny_flux),
            FluxFiles(t5=comfy_files.t5),
            LoadOptions(dtype="fp32", device="cpu", quantize_text_encoder="nf4"),
        )


def _fp8(tensor):
    """(fp8 values, scale) as ComfyUI's mixed-precision ops store a weight: weight = fp8 x scale."""
    scale = tensor.abs().max().float() / 448.0
    return (tensor.float() / scale).to(torch.float8_e4m3fn), scale


def test_newer_comfy_fp8_layout_loads_scaled(tiny_flux, comfy_files, tmp_path):
    """``<layer>.weight_scale`` + ``<layer>.comfy_quant``: the weight must be fp8 x scale, not the raw fp8."""
    import json

    from safetensors.torch import load_file, save_file

    tensors = load_file(comfy_files.transformer)
    layer = "double_blocks.0.img_attn.qkv"
    original = tensors[f"{layer}.weight"]
    stored, scale = _fp8(original)
    tensors[f"{layer}.weight"] = stored
    tensors[f"{layer}.weight_scale"] = scale
    tensors[f"{layer}.input_scale"] = torch.tensor(1.0)
    tensors[f"{layer}.comfy_quant"] = torch.tensor(list(json.dumps({"format": "float8_e4m3fn"}).encode()),
                                                   dtype=torch.uint8)
    file = tmp_path / "flux1-dev-fp8mixed.safetensors"
    save_file(tensors, str(file))
    transformer = load_flux(str(tiny_flux), FluxFiles(transformer=str(file)), CPU).pipe.transformer
    loaded = transformer.transformer_blocks[0].attn.to_q.weight
    expected = (stored.float() * scale)[: loaded.shape[0]]
    assert torch.equal(loaded, expected)
    assert (loaded - original[: loaded.shape[0]]).abs().max() <= 0.07 * original.abs().max()


def test_unknown_keys_and_quant_formats_fail_loudly(tiny_flux, comfy_files, tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    tensors = load_file(comfy_files.transformer)
    unknown = dict(tensors)
    unknown["double_blocks.0.img_attn.qkv.weight_offset"] = torch.zeros(1)
    save_file(unknown, str(tmp_path / "unknown.safetensors"))
    with pytest.raises(ModelLoadError, match="weight_offset") as info:
        load_flux(str(tiny_flux), FluxFiles(transformer=str(tmp_path / "unknown.safetensors")), CPU)
    assert "unknown.safetensors" in str(info.value)
    int8 = dict(tensors)
    int8["img_in.weight_scale"] = torch.tensor(0.1)
    int8["img_in.comfy_quant"] = torch.tensor(list(json.dumps({"format": "int8_blockwise"}).encode()),
                                              dtype=torch.uint8)
    save_file(int8, str(tmp_path / "int8.safetensors"))
    with pytest.raises(ModelLoadError, match="int8_blockwise"):
        load_flux(str(tiny_flux), FluxFiles(transformer=str(tmp_path / "int8.safetensors")), CPU)


def test_quantised_single_file_is_built_on_the_gpu(tiny_flux, comfy_files, monkeypatch):
    """NF4/int8 from one file: diffusers must quantise on ``device``, not hold the bf16 model in RAM."""
    from types import SimpleNamespace

    from diffusers import FluxTransformer2DModel

    from flenwheel.core.models import flux_single_file

    seen = {}
    def quant(kind, options, device):
        seen["compute"] = options.dtype
        return SimpleNamespace(quant_mapping={"transformer": "nf4-config"})

    monkeypatch.setattr(flux_single_file, "quantization_config", quant)
    monkeypatch.setattr(FluxTransformer2DModel, "from_single_file", lambda *a, **kw: seen.update(kw))
    load_transformer(comfy_files.transformer, str(tiny_flux), LoadOptions(dtype="fp16", quantize="nf4"), "cuda:1")
    assert seen["device"] == "cuda:1" and seen["quantization_config"] == "nf4-config"
    assert seen["compute"] == "fp16"


def test_fp16_t5_file_keeps_the_fp32_modules_of_the_folder_load(tiny_flux, comfy_files, tmp_path):
    """T5's ``wo`` overflows in fp16; transformers keeps it fp32, and a single file must do the same."""
    from safetensors.torch import load_file, save_file

    half = tmp_path / "t5xxl_fp16.safetensors"
    save_file({k: v.half() for k, v in load_file(comfy_files.t5).items()}, str(half))
    fp16 = LoadOptions(dtype="fp16", device="cpu")
    ours = load_flux(str(tiny_flux), FluxFiles(t5=str(half)), fp16).pipe.text_encoder_2
    folder = load_flux(str(tiny_flux), options=fp16).pipe.text_encoder_2
    dtypes = {name: p.dtype for name, p in ours.named_parameters()}
    assert dtypes == {name: p.dtype for name, p in folder.named_parameters()}
    assert dtypes["encoder.block.0.layer.1.DenseReluDense.wo.weight"] == torch.float32
    assert dtypes["encoder.block.0.layer.0.SelfAttention.q.weight"] == torch.float16
