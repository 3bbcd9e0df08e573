"""The FLUX.2 [klein] transformer from a single file in Black Forest Labs' layout (ComfyUI's diffusion_models).

BFL ships klein as ``flux-2-klein-4b.safetensors`` / ``-9b`` with BFL key names (``double_blocks``,
``single_blocks``, fused ``qkv``), sometimes behind ComfyUI's ``model.diffusion_model.`` prefix.
diffusers 0.42's ``Flux2Transformer2DModel.from_single_file`` converts that layout once the prefix is
gone; plain fp8 weights are widened to the compute dtype. Scaled-fp8 layouts (a per-layer
``scale_weight`` or ``weight_scale`` beside the weight) are refused by name rather than loaded
unscaled, which would run silently with wrong weights.

diffusers has no single-file loader for the FLUX.2 VAE (``AutoencoderKLFlux2``), and ComfyUI's
repacked Qwen3 text encoders are not transformers checkpoints, so those, the tokenizer and the
scheduler still come from a diffusers folder or hub id (a few MB besides the text encoder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .pipelines import FP8, LoadOptions, dtype_kwarg, quantization_config, torch_dtype
from .qwen_single_file import SingleFileError, read_checkpoint
from .registry import FLUX2_KLEIN
from .single_file_tensors import is_fp8

PREFIXES = ("model.diffusion_model.", "diffusion_model.")
#: A key only FLUX.2 transformers in BFL layout have (diffusers' own detection key).
FLUX2_MARKER = "single_stream_modulation.lin.weight"
SCALED_SUFFIXES = (".scale_weight", ".weight_scale", ".scale_input", ".input_scale", ".comfy_quant")


def _strip_prefix(checkpoint: dict[str, Any]) -> dict[str, Any]:
    for prefix in PREFIXES:
        if prefix + FLUX2_MARKER in checkpoint:
            return {key.removeprefix(prefix): value for key, value in checkpoint.items()}
    return checkpoint


def _check(checkpoint: dict[str, Any], file: Path) -> None:
    if FLUX2_MARKER not in checkpoint:
        if "single_transformer_blocks.0.attn.to_qkv_mlp_proj.weight" in checkpoint:
            raise SingleFileError(f"{file} is a FLUX.2 transformer in diffusers layout; load its folder instead")
        sample = ", ".join(sorted(checkpoint)[:4]) or "no tensors"
        raise SingleFileError(f"{file} is not a FLUX.2 transformer in BFL layout (no {FLUX2_MARKER}; found {sample})")
    scaled = sorted(key for key in checkpoint if key.endswith(SCALED_SUFFIXES))
    if scaled:
        raise SingleFileError(
            f"{file} is a scaled-fp8 file ({len(scaled)} scale keys, e.g. {scaled[0]}); FLENwheel reads bf16, "
            "fp16 or plain fp8 FLUX.2 files: use the bf16 file or the diffusers folder"
        )


def _widen(checkpoint: dict[str, Any], dtype: Any, keep_fp8: bool) -> dict[str, Any]:
    """fp8 weights widened to ``dtype``, or kept as stored for the fp8 storage option."""
    import torch

    return {key: value.to(torch.float32).to(dtype) if is_fp8(value) and not keep_fp8 else value
            for key, value in checkpoint.items()}


def load_flux2_transformer(path: str | Path, config_source: str, options: LoadOptions, device: str) -> Any:
    """Build the klein transformer from ``path`` with the architecture of ``config_source``'s transformer.

    ``options.quantize`` (nf4/int8) is applied while loading, on ``device``, and checked before the
    file is read, as for the other single-file loaders.
    """
    from diffusers import Flux2Transformer2DModel

    file = Path(path).expanduser()
    quant = quantization_config(FLUX2_KLEIN.name, LoadOptions(quantize=options.quantize), device)
    dtype = torch_dtype(options.dtype)
    checkpoint = _strip_prefix(read_checkpoint(file))
    _check(checkpoint, file)
    extra: dict[str, Any] = {}
    if quant is not None:
        extra = {"quantization_config": quant.quant_mapping["transformer"], "device": device}
    try:
        return Flux2Transformer2DModel.from_single_file(
            _widen(checkpoint, dtype, options.quantize == FP8), config=config_source, subfolder="transformer",
            **dtype_kwarg(dtype), **extra
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise SingleFileError(f"cannot build the FLUX.2 transformer from {file} with the config of "
                              f"{config_source}: {exc}") from None
