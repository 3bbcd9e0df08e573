"""The Qwen-Image-Edit-2509 or -2511 transformer from a ComfyUI single-file checkpoint.

ComfyUI users keep the edit model as one file in ``models/diffusion_models`` (for example
``qwen_image_edit_2509_bf16.safetensors`` or ``..._fp8_e4m3fn.safetensors``). Its keys are
diffusers' own module names, sometimes behind a ``model.diffusion_model.`` prefix, so diffusers'
``QwenImageTransformer2DModel.from_single_file`` reads it once the prefix is gone; fp8 weights
are widened to the compute dtype, and ComfyUI's scaled fp8 files (either layout) are multiplied
by their per-layer scales first (``single_file_tensors``).

What cannot be read from ComfyUI's folders: the Qwen-Image VAE (diffusers 0.42 has no single-file
loader for ``AutoencoderKLQwenImage``) and ComfyUI's repacked Qwen2.5-VL text encoders in
``models/text_encoders`` (transformers cannot load them). Those, with the tokenizer, processor and
scheduler, still come from a diffusers folder or the hub id ``Qwen/Qwen-Image-Edit-2509``;
diffusers then skips that folder's own transformer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.errors import ModelLoadError
from .pipelines import FP8, LoadOptions, quantization_config, torch_dtype
from .registry import QWEN_EDIT_2509
from .single_file_tensors import widen

PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.")
QWEN_MARKERS = ("txt_norm.weight", "img_in.weight")
#: Keys that identify checkpoints people put in the wrong place, with what they are.
OTHER_MODELS = {
    "double_blocks.0.img_attn.qkv.weight": "a FLUX transformer (ComfyUI layout)",
    "single_transformer_blocks.0.attn.to_q.weight": "a FLUX transformer (diffusers layout)",
    "txt_in.text_norm.weight": "a Qwen-Image 2.1 transformer",
    "input_blocks.0.0.weight": "a Stable Diffusion UNet",
    "decoder.conv_in.weight": "a VAE",
    "model.embed_tokens.weight": "a text encoder",
}
#: ComfyUI's empty marker tensor in Qwen-Image-Edit-2511 files: condition tokens at timestep zero
#: (diffusers' ``zero_cond_t``). The file is the model, so its marker wins over the config folder's flag.
ZERO_COND_MARKER = "__index_timestep_zero__"
UNSUPPORTED_SUFFIXES = {".gguf": "GGUF", ".ckpt": "pickle (.ckpt)", ".pt": "pickle (.pt)",
                        ".pth": "pickle (.pth)", ".bin": "pickle (.bin)"}


class SingleFileError(ModelLoadError):
    """A single-file checkpoint is missing, unreadable or not a Qwen-Image transformer."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """All tensors of a safetensors file, refusing other formats with a message that says what to use."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path).expanduser()
    if not file.is_file():
        raise SingleFileError(f"transformer checkpoint {file} does not exist")
    kind = UNSUPPORTED_SUFFIXES.get(file.suffix.lower())
    if kind:
        raise SingleFileError(f"{file} is a {kind} file; the Qwen-Image-Edit loader reads "
                              ".safetensors checkpoints only")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SingleFileError(f"{file} is not a readable safetensors file "
                              f"(truncated or corrupt?): {exc}") from None


def _strip_prefix(checkpoint: dict[str, Any]) -> dict[str, Any]:
    for prefix in PREFIXES:
        if any(key.startswith(prefix + QWEN_MARKERS[0]) for key in checkpoint):
            return {key[len(prefix):] if key.startswith(prefix) else key: value
                    for key, value in checkpoint.items()}
    return checkpoint


def _check_architecture(checkpoint: dict[str, Any], file: Path) -> None:
    if all(marker in checkpoint for marker in QWEN_MARKERS):
        return
    if any(".lora_" in key or "lora_down" in key for key in checkpoint):
        raise SingleFileError(f"{file} is a LoRA, not a transformer; add it as a LoRA instead")
    for marker, what in OTHER_MODELS.items():
        if any(key.endswith(marker) for key in checkpoint):
            raise SingleFileError(f"{file} is {what}, not a Qwen-Image-Edit transformer")
    sample = ", ".join(sorted(checkpoint)[:4]) or "no tensors"
    raise SingleFileError(f"{file} is not a Qwen-Image transformer (no {QWEN_MARKERS[0]}; found {sample})")


def _check_keys(checkpoint: dict[str, Any], config_source: str, file: Path) -> None:
    """Compare with the model the config describes, so a mismatched file fails with the reason."""
    from accelerate import init_empty_weights
    from diffusers import QwenImageTransformer2DModel

    try:
        config = QwenImageTransformer2DModel.load_config(config_source, subfolder="transformer")
    except (OSError, ValueError) as exc:
        raise SingleFileError(f"cannot read the transformer config of {config_source} "
                              f"(needed to build {file.name}): {exc}") from None
    with init_empty_weights():
        expected = set(QwenImageTransformer2DModel.from_config(config).state_dict())
    missing = sorted(expected - set(checkpoint))
    unexpected = sorted(set(checkpoint) - expected)
    if not missing and not unexpected:
        return
    blocks = len({key.split(".")[1] for key in checkpoint if key.startswith("transformer_blocks.")})
    details = []
    if missing:
        details.append(f"{len(missing)} weights missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        details.append(f"{len(unexpected)} unknown weights (e.g. {', '.join(unexpected[:3])})")
    raise SingleFileError(
        f"{file} does not match the transformer described by {config_source}: {'; '.join(details)}. "
        f"The file has {blocks} transformer blocks, the config {config.get('num_layers')}"
    )


def load_qwen_transformer(path: str | Path, config_source: str, options: LoadOptions, device: str) -> Any:
    """Build the transformer from ``path`` with the config (architecture) from ``config_source``.

    ``options.quantize`` (nf4/int8) is applied while loading, on ``device``; its checks run before
    the file is read, so an impossible choice fails at once rather than after reading 40 GB.
    """
    from diffusers import QwenImageTransformer2DModel

    from .pipelines import dtype_kwarg

    file = Path(path).expanduser()
    wanted = LoadOptions(quantize=options.quantize, dtype=options.dtype)
    quant = quantization_config(QWEN_EDIT_2509.name, wanted, device)
    dtype = torch_dtype(options.dtype)
    checkpoint = _strip_prefix(read_checkpoint(file))
    zero_cond_t = checkpoint.pop(ZERO_COND_MARKER, None) is not None
    _check_architecture(checkpoint, file)
    checkpoint = widen(checkpoint, dtype, file, keep_fp8=options.quantize == FP8)
    _check_keys(checkpoint, config_source, file)
    extra: dict[str, Any] = {}
    if quant is not None:
        extra = {"quantization_config": quant.quant_mapping["transformer"], "device": device}
    try:
        transformer = QwenImageTransformer2DModel.from_single_file(
            checkpoint, config=config_source, subfolder="transformer", **dtype_kwarg(dtype), **extra
        )
    except (OSError, ValueError) as exc:
        raise SingleFileError(f"cannot build the Qwen-Image-Edit transformer from {file}: {exc}") from None
    if zero_cond_t:
        set_zero_cond_t(transformer)
    return transformer


def set_zero_cond_t(transformer: Any) -> None:
    """Switch a transformer built from a 2509 config to 2511's rule, in its config and in every block
    (each ``QwenImageTransformerBlock`` keeps its own copy of the flag)."""
    transformer.register_to_config(zero_cond_t=True)
    transformer.zero_cond_t = True
    for block in transformer.transformer_blocks:
        block.zero_cond_t = True
