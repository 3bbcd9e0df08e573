"""Tensors of ComfyUI's single files: safetensors only, fp8 weights widened in both scaled layouts.

ComfyUI stores a scaled fp8 weight as ``fp8 = weight / scale``, so the real weight is ``fp8 x scale``.
Loading the fp8 values without the scale gives weights hundreds or thousands of times too large,
and a model that runs but draws noise, so every scale must be found and applied, and any quantised
format this code does not know must stop the load rather than be read as plain numbers.

- older layout: ``<layer>.scale_weight`` (plus ``<layer>.scale_input`` and a ``scaled_fp8`` marker);
- newer layout (ComfyUI's mixed-precision ops): ``<layer>.weight_scale`` plus ``<layer>.comfy_quant``,
  a uint8 tensor holding JSON such as ``{"format": "float8_e4m3fn"}`` (plus ``<layer>.input_scale``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data.errors import ModelLoadError

WEIGHT_SCALES = (".scale_weight", ".weight_scale")
#: Only used by kernels that quantise activations; the widened weight does not need them.
INPUT_SCALES = (".scale_input", ".input_scale")
QUANT_INFO = ".comfy_quant"
FP8_FORMATS = ("float8_e4m3fn", "float8_e5m2")


def read_state_dict(path: str | Path, part: str) -> dict[str, Any]:
    """All tensors of a safetensors file, with errors that name the file and say what to use instead."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelLoadError(f"{part} file {file} does not exist")
    suffix = file.suffix.lower()
    if suffix == ".gguf":
        raise ModelLoadError(
            f"{file}: GGUF files are not supported; use the .safetensors {part} (bf16 or fp8)"
        )
    if suffix in (".ckpt", ".pt", ".pth", ".bin"):
        raise ModelLoadError(
            f"{file}: pickled checkpoints are not loaded (they can run code); use a .safetensors file"
        )
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{part} file {file} is not a readable safetensors file (truncated?): {exc}"
        ) from None


def _layer(key: str, suffixes: tuple[str, ...]) -> str | None:
    return next((key[: -len(s)] for s in suffixes if key.endswith(s)), None)


def _formats(state_dict: dict[str, Any], file: str | Path) -> dict[str, str]:
    """Layer -> fp8 format from every ``comfy_quant`` entry; int8/nvfp4/mxfp8 blocks are not fp8 x scale."""
    found: dict[str, str] = {}
    for key, tensor in state_dict.items():
        if not key.endswith(QUANT_INFO):
            continue
        try:
            info = json.loads(bytes(tensor.flatten().tolist()).decode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{file}: unreadable quantisation info in {key} ({exc})") from None
        if info.get("format") not in FP8_FORMATS:
            raise ModelLoadError(
                f"{file}: layer {key[: -len(QUANT_INFO)]} is quantised as {info.get('format')!r}, which "
                f"this loader cannot widen (it reads {', '.join(FP8_FORMATS)}); use a bf16, fp16 or fp8 file"
            )
        found[key[: -len(QUANT_INFO)]] = info["format"]
    return found


def _scale_of(state_dict: dict[str, Any], weight_key: str) -> Any:
    layer = weight_key[: -len(".weight")]
    return next((state_dict[layer + s] for s in WEIGHT_SCALES if layer + s in state_dict), None)


def _apply(weight: Any, scale: Any, fp8_format: str | None) -> Any:
    """fp8 x scale in fp32; a per-row scale (one value per output row) is broadcast over the row.

    ComfyUI may store the fp8 bytes in a uint8 container; ``comfy_quant`` then says how to read them.
    """
    import torch

    if fp8_format and weight.dtype == torch.uint8:
        weight = weight.view(getattr(torch, fp8_format))
    widened, scale = weight.to(torch.float32), scale.to(torch.float32)
    if scale.dim() == 1 and scale.numel() == widened.shape[0] and widened.dim() > 1:
        scale = scale.reshape(-1, *([1] * (widened.dim() - 1)))
    return widened * scale


def widen(state_dict: dict[str, Any], dtype: Any, file: str | Path = "checkpoint",
          keep_fp8: bool = False) -> dict[str, Any]:
    """Floating tensors in ``dtype``, scaled fp8 weights multiplied by their scales; scale keys removed.

    With ``keep_fp8`` (the fp8 storage option) a plain fp8 weight stays as stored: the loaded model
    keeps those exact values in fp8 instead of a bf16 copy twice their size. A scale with no weight
    beside it means the file is not what its keys say, so it fails loudly.
    """
    formats = _formats(state_dict, file)
    orphans = [key for key in state_dict
               if (layer := _layer(key, WEIGHT_SCALES)) is not None and layer + ".weight" not in state_dict]
    if orphans:
        raise ModelLoadError(f"{file}: weight scales without a weight ({', '.join(orphans[:3])})")
    out: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        if key.endswith(("scaled_fp8", QUANT_INFO, *WEIGHT_SCALES, *INPUT_SCALES)):
            continue
        scale = _scale_of(state_dict, key) if key.endswith(".weight") else None
        if scale is not None:
            out[key] = _apply(tensor, scale, formats.get(key[: -len(".weight")])).to(dtype)
        elif keep_fp8 and is_fp8(tensor):
            out[key] = tensor
        else:
            out[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return out


def is_fp8(tensor: Any) -> bool:
    """A tensor stored in one of the fp8 formats ComfyUI's files use."""
    return str(tensor.dtype).removeprefix("torch.") in FP8_FORMATS
