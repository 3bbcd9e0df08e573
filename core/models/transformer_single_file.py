"""A newer character base's transformer from one file in ComfyUI's ``diffusion_models`` folder.

Each family's registry entry says how its file is recognised (``TransformerFile``): FLUX.2 [klein]
ships in Black Forest Labs' layout (``flux-2-klein-4b.safetensors``: ``double_blocks``,
``single_blocks``, fused ``qkv``), Z-Image in ComfyUI's (``z_image_turbo_bf16.safetensors``: fused
``attention.qkv``, ``attention.out``, ``x_embedder`` without its patch-size key), either sometimes
behind ComfyUI's ``model.diffusion_model.`` prefix. diffusers 0.42's ``from_single_file`` converts
both once the prefix is gone; plain fp8 weights are widened to the compute dtype. Scaled-fp8 layouts
(a per-layer ``scale_weight`` or ``weight_scale`` beside the weight) are refused by name rather than
loaded unscaled, which would run silently with wrong weights.

diffusers has no single-file loader for these families' other parts in ComfyUI's files (the FLUX.2
VAE; ComfyUI's repacked Qwen3 text encoders are not transformers checkpoints), so the VAE, text
encoder, tokenizer and scheduler still come from a diffusers folder or hub id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .pipelines import FP8, LoadOptions, dtype_kwarg, quantization_config, torch_dtype
from .qwen_single_file import SingleFileError, read_checkpoint
from .registry import ModelFamily
from .single_file_tensors import is_fp8

PREFIXES = ("model.diffusion_model.", "diffusion_model.")
SCALED_SUFFIXES = (".scale_weight", ".weight_scale", ".scale_input", ".input_scale", ".comfy_quant")


def _strip_prefix(checkpoint: dict[str, Any], marker: str) -> dict[str, Any]:
    for prefix in PREFIXES:
        if prefix + marker in checkpoint:
            return {key.removeprefix(prefix): value for key, value in checkpoint.items()}
    return checkpoint


def _check(checkpoint: dict[str, Any], file: Path, entry: ModelFamily) -> None:
    layout = entry.transformer_file
    if layout.marker not in checkpoint:
        if layout.diffusers_marker in checkpoint:
            raise SingleFileError(f"{file} is a {entry.title} transformer in diffusers layout; load its folder instead")
        sample = ", ".join(sorted(checkpoint)[:4]) or "no tensors"
        raise SingleFileError(f"{file} is not a {entry.title} transformer in {layout.layout} layout "
                              f"(no {layout.marker}; found {sample})")
    scaled = sorted(key for key in checkpoint if key.endswith(SCALED_SUFFIXES))
    if scaled:
        raise SingleFileError(
            f"{file} is a scaled-fp8 file ({len(scaled)} scale keys, e.g. {scaled[0]}); FLENwheel reads bf16, "
            f"fp16 or plain fp8 {entry.title} files: use the bf16 file or the diffusers folder"
        )


def _widen(checkpoint: dict[str, Any], dtype: Any, keep_fp8: bool) -> dict[str, Any]:
    """fp8 weights widened to ``dtype``, or kept as stored for the fp8 storage option."""
    import torch

    return {key: value.to(torch.float32).to(dtype) if is_fp8(value) and not keep_fp8 else value
            for key, value in checkpoint.items()}


def load_transformer_file(entry: ModelFamily, path: str | Path, config_source: str, options: LoadOptions,
                          device: str) -> Any:
    """Build ``entry``'s transformer from ``path`` with the architecture of ``config_source``'s transformer.

    ``options.quantize`` (nf4/int8) is applied while loading, on ``device``, and checked before the
    file is read, as for the other single-file loaders.
    """
    import diffusers

    if entry.transformer_file is None:
        raise SingleFileError(f"{entry.title} has no single-file transformer loader; load its diffusers folder")
    file = Path(path).expanduser()
    quant = quantization_config(entry.name, LoadOptions(quantize=options.quantize), device)
    dtype = torch_dtype(options.dtype)
    checkpoint = _strip_prefix(read_checkpoint(file), entry.transformer_file.marker)
    _check(checkpoint, file, entry)
    extra: dict[str, Any] = {}
    if quant is not None:
        extra = {"quantization_config": quant.quant_mapping["transformer"], "device": device}
    try:
        return getattr(diffusers, entry.transformer_class).from_single_file(
            _widen(checkpoint, dtype, options.quantize == FP8), config=config_source, subfolder="transformer",
            **dtype_kwarg(dtype), **extra
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise SingleFileError(f"cannot build the {entry.title} transformer from {file} with the config of "
                              f"{config_source}: {exc}") from None
