"""CLIP-L and T5-XXL from ComfyUI's ``text_encoders`` files, built with the base model's config.

ComfyUI's text-encoder files use Hugging Face key layouts (behind a prefix that may differ), in
fp32/fp16/bf16/fp8 or scaled fp8. The model is built empty from the config, the file's tensors are
re-prefixed, widened and assigned, and the modules transformers keeps in fp32 (T5's ``wo`` under
fp16) stay in fp32, exactly as ``from_pretrained`` would load the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.errors import ModelLoadError
from .missing import missing_model_error
from .pipelines import looks_like_path, torch_dtype
from .single_file_tensors import read_state_dict, widen


@dataclass(frozen=True)
class _EncoderKind:
    label: str
    subfolder: str
    marker: str


_ENCODERS = {
    "clip_l": _EncoderKind("CLIP-L", "text_encoder", "embeddings.token_embedding.weight"),
    "t5": _EncoderKind("T5-XXL", "text_encoder_2", "encoder.final_layer_norm.weight"),
}


def _model_class(part: str) -> Any:
    from transformers import CLIPTextModel, T5EncoderModel

    return CLIPTextModel if part == "clip_l" else T5EncoderModel


def _align_keys(state_dict: dict[str, Any], expected: list[str], marker: str) -> dict[str, Any] | None:
    """Re-prefix file keys to the model's (``text_model.`` or a checkpoint prefix may differ)."""
    found = next((key for key in state_dict if key.endswith(marker)), None)
    wanted = next((key for key in expected if key.endswith(marker)), None)
    if found is None or wanted is None:
        return None
    old, new = found[: -len(marker)], wanted[: -len(marker)]
    return {new + key[len(old) :]: value for key, value in state_dict.items() if key.startswith(old)}


def _fp32_modules(model: Any, dtype: Any) -> set[str]:
    """Module names transformers keeps in fp32 for this dtype (T5's ``wo`` in fp16, where its
    activations overflow), so a single file loads as ``from_pretrained`` would load the folder."""
    import torch

    names: set[str] = set()
    if dtype in (torch.float16, torch.bfloat16):
        names |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    if dtype == torch.float16:
        names |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    return names


def load_text_encoder(part: str, path: str | Path, config_source: str, dtype_name: str) -> Any:
    """CLIP-L or T5-XXL from a ComfyUI text-encoder file, with the base model's config."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig

    kind = _ENCODERS[part]
    try:
        config = AutoConfig.from_pretrained(config_source, subfolder=kind.subfolder)
    except (OSError, ValueError) as exc:
        raise missing_model_error(f"the {kind.label} config of", config_source, exc,
                                  looks_like_path(config_source)) from None
    with init_empty_weights(include_buffers=False):
        model = _model_class(part)(config)
    expected = list(model.state_dict())
    dtype = torch_dtype(dtype_name)
    state_dict = _align_keys(widen(read_state_dict(path, part), dtype, path), expected, kind.marker)
    if state_dict is None:
        raise ModelLoadError(f"{path} is not a {kind.label} text encoder (no key ending in {kind.marker})")
    known = set(expected)
    kept = _fp32_modules(model, dtype)
    state_dict = {k: v.float() if kept & set(k.split(".")) else v for k, v in state_dict.items() if k in known}
    try:
        model.load_state_dict(state_dict, strict=False, assign=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path} does not match the {kind.label} of {config_source}: {exc}") from None
    model.tie_weights()
    missing = [name for name, param in model.named_parameters() if param.device.type == "meta"]
    if missing:
        raise ModelLoadError(
            f"{path} is not a complete {kind.label} text encoder: {len(missing)} weights missing "
            f"(e.g. {', '.join(missing[:3])})"
        )
    return model.eval()
