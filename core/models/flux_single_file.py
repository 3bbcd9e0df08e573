"""FLUX from the single files a ComfyUI user already has, with a diffusers folder or hub id for the rest.

ComfyUI keeps FLUX.1 as separate files: the transformer in ``diffusion_models``/``unet`` (e.g.
``flux1-dev.safetensors``, Black Forest Labs' key layout, sometimes fp8), the autoencoder as
``ae.safetensors`` in ``vae``, and ``clip_l`` + ``t5xxl`` in ``text_encoders``/``clip``. Reusing
them saves a 30 GB download. What still comes from the diffusers folder or hub id (``source``):
the model configs, both tokenizers and the scheduler (a few MB), plus any part not given as a file.

Supported, per part:
- transformer: BFL layout (optionally under ``model.diffusion_model.``, as in all-in-one
  checkpoints) or diffusers layout; bf16/fp16/fp32, plain fp8 and ComfyUI's scaled fp8 are
  upcast to the chosen dtype; NF4/8-bit quantisation on a GPU.
- vae: the LDM/BFL layout of ``ae.safetensors`` (diffusers' own converter).
- clip_l, t5xxl: Hugging Face layouts (ComfyUI's files are), fp16/bf16/fp32/fp8/scaled fp8.
Not supported: GGUF files, pickled ``.ckpt``/``.pt`` files, and 4/8-bit quantisation of a T5
loaded from a single file (load T5 from the folder to quantise it).

Our BFL-to-diffusers transformer conversion reads the layer widths from the tensors. diffusers'
own converter hard-codes FLUX.1's width (3072), which rules out any other geometry, the tiny test
model included; the test suite checks that both agree on FLUX.1's geometry.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.errors import ModelLoadError
from .flux_text_encoders import load_text_encoder
from .pipelines import (
    FP8,
    LoadOptions,
    PipelineHandle,
    check_source,
    default_device,
    dtype_kwarg,
    load_pipeline,
    quantization_config,
    torch_dtype,
)
from .registry import FLUX1_DEV
from .single_file_tensors import read_state_dict, widen

#: ComfyUI model folder each part is picked from.
COMFY_FOLDERS = dict(FLUX1_DEV.comfy_folders)
_CHECKPOINT_PREFIX = "model.diffusion_model."

_GLOBAL = {
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "txt_in": "context_embedder",
    "img_in": "x_embedder",
    "final_layer.linear": "proj_out",
}
_DOUBLE = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
}
_DOUBLE_NORMS = {
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
}
_SINGLE = {"modulation.lin": "norm.linear", "linear2": "proj_out"}
_SINGLE_NORMS = {"norm.query_norm.scale": "attn.norm_q.weight", "norm.key_norm.scale": "attn.norm_k.weight"}
#: Fused BFL projections and the diffusers projections they hold, in order.
_DOUBLE_QKV = {
    "img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
}
_SINGLE_FUSED = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
_FINAL_MOD = ("final_layer.adaLN_modulation.1", "norm_out.linear")


@dataclass(frozen=True)
class FluxFiles:
    """Single files replacing parts of the FLUX pipeline; None keeps the part from ``source``."""

    transformer: str | None = None
    vae: str | None = None
    clip_l: str | None = None
    t5: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)

    def given(self) -> bool:
        return any(self.to_json().values())


def _block_count(keys: list[str], prefix: str) -> int:
    found = [int(m.group(1)) for key in keys if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", key))]
    return max(found) + 1 if found else 0


def _renames(double: int, single: int) -> dict[str, str]:
    """Exact BFL name -> diffusers name for every tensor that is only renamed."""
    names: dict[str, str] = {}

    def module(bfl: str, diffusers: str) -> None:
        for param in ("weight", "bias"):
            names[f"{bfl}.{param}"] = f"{diffusers}.{param}"

    for bfl, diffusers in _GLOBAL.items():
        module(bfl, diffusers)
    for i in range(double):
        for bfl, diffusers in _DOUBLE.items():
            module(f"double_blocks.{i}.{bfl}", f"transformer_blocks.{i}.{diffusers}")
        for bfl, diffusers in _DOUBLE_NORMS.items():
            names[f"double_blocks.{i}.{bfl}"] = f"transformer_blocks.{i}.{diffusers}"
    for i in range(single):
        for bfl, diffusers in _SINGLE.items():
            module(f"single_blocks.{i}.{bfl}", f"single_transformer_blocks.{i}.{diffusers}")
        for bfl, diffusers in _SINGLE_NORMS.items():
            names[f"single_blocks.{i}.{bfl}"] = f"single_transformer_blocks.{i}.{diffusers}"
    return names


def _swap_halves(tensor: Any) -> Any:
    """BFL's final modulation is (shift, scale), diffusers' (scale, shift); swapping is its own inverse."""
    import torch

    first, second = tensor.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def is_bfl_layout(state_dict: dict[str, Any]) -> bool:
    return any(
        key.startswith(("double_blocks.", f"{_CHECKPOINT_PREFIX}double_blocks.")) for key in state_dict
    )


def bfl_to_diffusers(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Black Forest Labs / ComfyUI transformer keys to diffusers' FluxTransformer2DModel keys.

    Keys of other parts in an all-in-one checkpoint (VAE, text encoders) are left out; any other
    key this conversion does not place raises ValueError, because dropping it would load a wrong model.
    """
    if any(key.startswith(_CHECKPOINT_PREFIX) for key in state_dict):
        state_dict = {
            k[len(_CHECKPOINT_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(_CHECKPOINT_PREFIX)
        }
    keys = list(state_dict)
    double, single = _block_count(keys, "double_blocks."), _block_count(keys, "single_blocks.")
    inner = state_dict["img_in.weight"].shape[0]
    renames = {bfl: diffusers for bfl, diffusers in _renames(double, single).items() if bfl in state_dict}
    out = {diffusers: state_dict[bfl] for bfl, diffusers in renames.items()}
    used = set(renames)
    for param in ("weight", "bias"):
        for i in range(double):
            for fused, parts in _DOUBLE_QKV.items():
                used.add(key := f"double_blocks.{i}.{fused}.{param}")
                for name, tensor in zip(parts, state_dict[key].chunk(3, dim=0), strict=True):
                    out[f"transformer_blocks.{i}.{name}.{param}"] = tensor
        for i in range(single):
            used.add(key := f"single_blocks.{i}.linear1.{param}")
            fused = state_dict[key]
            sizes = [inner, inner, inner, fused.shape[0] - 3 * inner]
            for name, tensor in zip(_SINGLE_FUSED, fused.split(sizes, dim=0), strict=True):
                out[f"single_transformer_blocks.{i}.{name}.{param}"] = tensor
        used.add(key := f"{_FINAL_MOD[0]}.{param}")
        out[f"{_FINAL_MOD[1]}.{param}"] = _swap_halves(state_dict[key])
    unknown = sorted(set(state_dict) - used)
    if unknown:
        raise ValueError(f"{len(unknown)} transformer weights this loader does not know "
                         f"(e.g. {', '.join(unknown[:3])}); it refuses rather than drop them")
    return out


def diffusers_to_bfl(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The inverse: write a diffusers FLUX transformer the way ComfyUI stores it."""
    import torch

    keys = list(state_dict)
    double, single = (
        _block_count(keys, "transformer_blocks."),
        _block_count(keys, "single_transformer_blocks."),
    )
    out = {
        bfl: state_dict[diffusers]
        for bfl, diffusers in _renames(double, single).items()
        if diffusers in state_dict
    }
    for param in ("weight", "bias"):
        for i in range(double):
            for fused, parts in _DOUBLE_QKV.items():
                out[f"double_blocks.{i}.{fused}.{param}"] = torch.cat(
                    [state_dict[f"transformer_blocks.{i}.{name}.{param}"] for name in parts]
                )
        for i in range(single):
            out[f"single_blocks.{i}.linear1.{param}"] = torch.cat(
                [state_dict[f"single_transformer_blocks.{i}.{name}.{param}"] for name in _SINGLE_FUSED]
            )
        out[f"{_FINAL_MOD[0]}.{param}"] = _swap_halves(state_dict[f"{_FINAL_MOD[1]}.{param}"])
    return out


def _check_keys(state_dict: dict[str, Any], config_source: str, path: str | Path) -> None:
    """Every weight the config's model has, and nothing else: a key this loader does not understand
    (a new quantisation layout, say) must stop the load, not be dropped while the model runs wrong."""
    from accelerate import init_empty_weights
    from diffusers import FluxTransformer2DModel

    try:
        config = FluxTransformer2DModel.load_config(config_source, subfolder="transformer")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the FLUX transformer config of {config_source}: {exc}") from None
    with init_empty_weights():
        expected = set(FluxTransformer2DModel.from_config(config).state_dict())
    missing, unknown = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing:
        raise ModelLoadError(f"{path} is not a complete FLUX transformer for {config_source}: "
                             f"{len(missing)} weights missing (e.g. {', '.join(missing[:3])})")
    if unknown:
        raise ModelLoadError(f"{path} holds {len(unknown)} weights this loader does not know "
                             f"(e.g. {', '.join(unknown[:3])}); it refuses rather than drop them")


def load_transformer(path: str | Path, config_source: str, options: LoadOptions, device: str) -> Any:
    """The FLUX transformer from one file, configured like ``config_source``'s, optionally quantised.

    Quantisation happens while loading, on ``device``, so the bf16 model never sits whole in RAM.
    """
    from diffusers import FluxTransformer2DModel

    dtype = torch_dtype(options.dtype)
    quant = quantization_config(FLUX1_DEV.name, LoadOptions(quantize=options.quantize, dtype=options.dtype), device)
    state_dict = widen(read_state_dict(path, "transformer"), dtype, path, keep_fp8=options.quantize == FP8)
    if is_bfl_layout(state_dict):
        try:
            state_dict = bfl_to_diffusers(state_dict)
        except KeyError as exc:
            raise ModelLoadError(f"{path} is not a complete FLUX transformer: {exc} is missing") from None
        except ValueError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
    elif not any(key.startswith("transformer_blocks.") for key in state_dict):
        raise ModelLoadError(
            f"{path} is not a FLUX transformer (no double_blocks.* or transformer_blocks.* keys)"
        )
    _check_keys(state_dict, config_source, path)
    extra: dict[str, Any] = {}
    if quant is not None:
        extra = {"quantization_config": quant.quant_mapping["transformer"], "device": device}
    try:
        return FluxTransformer2DModel.from_single_file(
            state_dict, config=config_source, subfolder="transformer", **dtype_kwarg(dtype), **extra
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"cannot load the FLUX transformer {path} with the config of {config_source}: {exc}"
        ) from None


def load_vae(path: str | Path, config_source: str, dtype_name: str) -> Any:
    """FLUX's autoencoder (``ae.safetensors``) through diffusers' own LDM-layout converter."""
    from diffusers import AutoencoderKL

    file = Path(path).expanduser()
    read_state_dict(file, "vae")
    try:
        return AutoencoderKL.from_single_file(
            str(file), config=config_source, subfolder="vae", **dtype_kwarg(torch_dtype(dtype_name))
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot load the FLUX VAE {file} with the config of {config_source}: {exc}"
        ) from None


def load_flux(
    source: str = FLUX1_DEV.hub_id, files: FluxFiles | None = None, options: LoadOptions | None = None
) -> PipelineHandle:
    """FLUX from a diffusers folder or hub id, with any of its parts replaced by single files."""
    files = files or FluxFiles()
    options = options or LoadOptions()
    options.validate()
    resolved = check_source(source, FLUX1_DEV.name)
    if not files.given():
        return load_pipeline(FLUX1_DEV.name, resolved, options=options)
    if files.t5 and options.quantize_text_encoder != "none":
        raise ModelLoadError(
            "4/8-bit quantisation of a T5 loaded from a single file is not supported; leave the t5 "
            "file out (T5 then comes from the model folder) or set quantize_text_encoder=none"
        )
    device = options.device or default_device()
    components: dict[str, Any] = {}
    if files.transformer:
        components["transformer"] = load_transformer(files.transformer, resolved, options, device)
    if files.vae:
        components["vae"] = load_vae(files.vae, resolved, options.dtype)
    if files.clip_l:
        components["text_encoder"] = load_text_encoder("clip_l", files.clip_l, resolved, options.dtype)
    if files.t5:
        components["text_encoder_2"] = load_text_encoder("t5", files.t5, resolved, options.dtype)
    rest = options.after_transformer_file() if files.transformer else options
    handle = load_pipeline(FLUX1_DEV.name, resolved, options=rest, components=components)
    handle.options = {**options.to_json(), "files": files.to_json()}
    return handle
