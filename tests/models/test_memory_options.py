"""Memory options for inference on the four tiny bases, through the loaders real weights use.

- ``offload=group`` (diffusers' block-level group offload) draws the very same pixels as the plain path.
- ``quantize=fp8`` keeps the transformer's layer weights in float8 e4m3fn and computes in ``dtype``:
  its pictures equal, bit for bit, those of the plain fp32 transformer with every such weight
  rounded to fp8 (an independent reference), and stay within fp8's precision of the unrounded
  fp32 pictures: e4m3 keeps 3 mantissa bits, so one stored weight is off by at most
  u = 2^-4 relative; a 0..1 pixel may move by at most 2u and the mean pixel by at most u/4.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from PIL import Image

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.models.character_base import load_character_base
from flenwheel.core.models.device_memory import FP8_UNIT_ROUNDOFF, fp8_dtype
from flenwheel.core.models.flux_single_file import FluxFiles, load_flux
from flenwheel.core.models.pipelines import LoadOptions, load_pipeline, prompt_kwargs
from flenwheel.core.models.qwen_edit_loader import load_qwen_edit

BASES = ["flux", "flux2-klein", "qwen-edit", "qwen-edit-2511", "z-image"]
FIXTURES = {"flux": "tiny_flux", "flux2-klein": "tiny_flux2_klein", "qwen-edit": "tiny_qwen_edit",
            "qwen-edit-2511": "tiny_qwen_edit_2511", "z-image": "tiny_z_image"}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _load(kind: str, folder, **options):
    chosen = LoadOptions(dtype="fp32", device="cpu", **options)
    if kind.startswith("qwen"):
        return load_qwen_edit(str(folder), options=chosen, reuse=False)
    return load_character_base(kind, str(folder), options=chosen)


def _picture(handle) -> np.ndarray:
    """Two denoising steps at 64 px with a fixed seed: an edit for the editors, a prompt otherwise."""
    generator = torch.Generator().manual_seed(7)
    common = {"num_inference_steps": 2, "width": 64, "height": 64, "generator": generator, "output_type": "np"}
    if handle.kind.startswith("qwen"):
        from flenwheel.core.models.pipelines import qwen_edit_sizes

        source = Image.new("RGB", (64, 64), (40, 120, 200))
        with qwen_edit_sizes(64 * 64, 56 * 56), torch.inference_mode():
            return handle.pipe(image=[source], prompt="make it red", true_cfg_scale=1.0, **common).images[0]
    with torch.inference_mode():
        return handle.pipe(**prompt_kwargs(handle.pipe, ["a photo of a person"]), **common).images[0]


def _fp8_rounded(model_fp8, model_fp32) -> None:
    """The independent reference: each fp32 weight that the fp8 model stores in fp8, rounded the same way."""
    stored = dict(model_fp8.named_parameters())
    for name, param in model_fp32.named_parameters():
        if stored[name].dtype == fp8_dtype():  # a fresh tensor, as the fp8 path widens into (see own_memory)
            param.data = param.data.to(fp8_dtype()).to(param.dtype)


@pytest.mark.parametrize("kind", BASES)
def test_group_offload_draws_the_same_pixels(kind, request):
    folder = request.getfixturevalue(FIXTURES[kind])
    plain = _picture(_load(kind, folder))
    handle = _load(kind, folder, offload="group")
    assert handle.options["offload"] == "group"
    assert np.array_equal(_picture(handle), plain)


@pytest.mark.parametrize("kind", BASES)
def test_fp8_storage_holds_the_transformer_in_fp8_and_draws_within_its_precision(kind, request):
    folder = request.getfixturevalue(FIXTURES[kind])
    plain_handle = _load(kind, folder)
    plain = _picture(plain_handle)
    plain_handle = dataclasses.replace(plain_handle)  # the editor loader drops its shared pipe at the next load
    handle = _load(kind, folder, quantize="fp8")
    transformer = handle.pipe.transformer
    # every linear layer of the blocks (Z-Image: layers and refiners) but the modulation ones (named norm*,
    # kept precise by diffusers)
    block_linears = [module for name, module in transformer.named_modules()
                     if isinstance(module, torch.nn.Linear) and re.search(r"(blocks|layers|refiner)\.", name)
                     and "norm" not in name]
    assert block_linears and all(module.weight.dtype == fp8_dtype() for module in block_linears)
    assert all(p.dtype == torch.float32 for p in handle.pipe.vae.parameters())  # only the transformer
    fp8 = _picture(handle)
    _fp8_rounded(transformer, plain_handle.pipe.transformer)
    assert np.array_equal(fp8, _picture(plain_handle))  # exactly fp32 compute on fp8-stored weights
    difference = np.abs(fp8.astype(np.float64) - plain.astype(np.float64))
    assert difference.max() <= 2 * FP8_UNIT_ROUNDOFF and difference.mean() <= FP8_UNIT_ROUNDOFF / 4
    assert difference.max() > 0  # the weights really were rounded


@pytest.mark.parametrize("kind", ["flux", "qwen-edit"])
def test_fp8_and_group_offload_combine(kind, request):
    folder = request.getfixturevalue(FIXTURES[kind])
    alone = _picture(_load(kind, folder, quantize="fp8"))
    assert np.array_equal(_picture(_load(kind, folder, quantize="fp8", offload="group")), alone)


def test_an_fp8_single_file_stays_fp8_with_its_exact_values(tiny_flux, tmp_path):
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import save_file

    source = FluxTransformer2DModel.from_pretrained(str(tiny_flux), subfolder="transformer")
    state = {k: (v.to(fp8_dtype()) if k.startswith(("transformer_blocks", "single_transformer_blocks"))
                 and k.endswith(".weight") and v.dim() == 2 and "norm" not in k else v.contiguous())
             for k, v in source.state_dict().items()}
    file = tmp_path / "flux1-dev-fp8.safetensors"
    save_file(state, str(file))
    handle = load_flux(str(tiny_flux), FluxFiles(transformer=str(file)),
                       LoadOptions(dtype="fp32", device="cpu", quantize="fp8"))
    loaded = dict(handle.pipe.transformer.named_parameters())
    fp8_keys = [k for k, v in state.items() if v.dtype == fp8_dtype()]
    assert fp8_keys and all(loaded[k].dtype == fp8_dtype() for k in fp8_keys)
    assert all(torch.equal(loaded[k].view(torch.uint8), state[k].view(torch.uint8)) for k in fp8_keys)
    widened = load_flux(str(tiny_flux), FluxFiles(transformer=str(file)), LoadOptions(dtype="fp32", device="cpu"))
    assert all(p.dtype == torch.float32 for p in widened.pipe.transformer.parameters())  # unchanged without fp8


@pytest.mark.parametrize(("options", "device", "message"), [
    ({"quantize": "fp8"}, "mps", "fp8 weights cannot be stored on mps.*quantize=none"),
    ({"offload": "model"}, "cpu", "offload=model needs a CUDA GPU.*offload=none.*offload=group"),
    ({"quantize": "fp8", "offload": "sequential"}, "cpu",
     "fp8 does not combine with offload=sequential.*offload=group"),
    ({"quantize": "fp4"}, "cpu", "unknown quantize 'fp4'; use one of none, nf4, int8, fp8"),
    ({"offload": "groups"}, "cpu", "unknown offload 'groups'; use one of none, model, sequential, group"),
])
def test_an_option_the_device_cannot_do_fails_before_loading_naming_the_alternatives(options, device, message,
                                                                                      tmp_path):
    with pytest.raises(ModelLoadError, match=message) as failure:
        load_pipeline("flux", str(tmp_path / "never-read"), options=LoadOptions(device=device, **options))
    assert "\n" not in str(failure.value)


def test_the_readme_estimates_are_the_registrys():
    """Every row of the README's fp8 / block swap table is computed from the registry, marked an estimate."""
    from pathlib import Path

    from flenwheel.core.models.registry import families

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for entry in families():
        memory = entry.memory
        row = (f"| `{entry.name}` | {memory.weights_on_gpu(2):.1f} GB | {memory.weights_on_gpu(1):.1f} GB | "
               f"{memory.weights_on_gpu(0.55):.1f} GB | {entry.transformer_blocks} | {entry.max_blocks_to_swap} | "
               f"{memory.weights_on_gpu(1, entry.max_blocks_to_swap, entry.transformer_blocks):.1f} GB (estimate) |")
        assert row in readme, row


def test_the_cli_offers_fp8_and_group_offload_and_passes_them_to_the_loader():
    from click.testing import CliRunner

    from flenwheel.cli._memory import load_options
    from flenwheel.cli.generate_cmd import generate_cmd

    result = CliRunner().invoke(generate_cmd, ["--help"], terminal_width=200)
    assert "[none|nf4|int8|fp8]" in result.output and "[none|model|sequential|group]" in result.output
    options = load_options({"dtype": "bf16", "quantize": "fp8", "quantize_text_encoder": "none", "offload": "group",
                            "vae_tiling": False, "device": "cpu"})
    assert (options.quantize, options.offload) == ("fp8", "group")


@pytest.mark.parametrize("kind", ["flux", "qwen-edit"])
def test_a_lora_on_an_fp8_or_group_offloaded_base_keeps_its_precision_and_its_effect(kind, request, tmp_path):
    """A LoRA loaded on an fp8 base stays in the compute dtype (peft would otherwise make it fp8),
    and draws exactly what the fp8-rounded fp32 base draws with the same LoRA; group offload changes nothing."""
    from flenwheel.core.models.loras import LoraSpec, set_loras
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    folder = request.getfixturevalue(FIXTURES[kind])
    lora = make_tiny_lora(folder, tmp_path / "lora.safetensors")

    def with_lora(**options):
        handle = dataclasses.replace(_load(kind, folder, **options))
        handle = handle.with_loras([LoraSpec(str(lora), 1.0)])
        set_loras(handle, list(handle.lora_specs))
        return handle

    plain = with_lora()
    assert np.array_equal(_picture(with_lora(offload="group")), _picture(plain))
    fp8 = with_lora(quantize="fp8")
    lora_params = [p for name, p in fp8.pipe.transformer.named_parameters() if "lora_" in name]
    assert lora_params and all(p.dtype == torch.float32 for p in lora_params)
    drawn = _picture(fp8)
    _fp8_rounded(fp8.pipe.transformer, plain.pipe.transformer)
    assert np.array_equal(drawn, _picture(plain))
