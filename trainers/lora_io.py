"""LoRA files that every loader reads the same way: diffusers, ComfyUI, and tools that default alpha.

Keys are diffusers/PEFT names with the ``transformer.`` prefix (``transformer.<module>.lora_A.weight``
/ ``.lora_B.weight``), which diffusers' ``load_lora_weights`` reads and ComfyUI's LoraLoader maps
onto its own layout (fused FLUX qkv included). Loaders disagree on alpha: ComfyUI takes
``<module>.alpha`` tensors (and scale 1 without them), diffusers takes adapter metadata or alpha
tensors, some tools assume alpha == rank. So the scale ``alpha / rank`` is folded into ``lora_B``
and the file's alpha equals the rank: each loader computes scale 1 and applies the same update.
FLUX files carry ``.alpha`` tensors (= rank) for ComfyUI; Qwen-Image files do not, because
diffusers' Qwen loader treats ``.alpha`` keys as a non-diffusers file and then expects unprefixed
keys. The training alpha is kept in the header for the record (``flenwheel.alpha``); the kohya-style
``ss_network_alpha`` that LoRA tools read names the stored alpha (= rank), since a tool that applied
``ss_network_alpha / ss_network_dim`` on top of the folded weights would use the scale twice.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..core.data.atomic import atomic_write_with
from ..core.data.errors import FlenwheelError
from ..core.data.records import utc_now

if TYPE_CHECKING:
    from .config import TrainConfig
    from .datasets import TrainingData

PREFIX = "transformer"
SAVE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_targets(
    model: torch.nn.Module, patterns: list[str], containers: tuple[str, ...], kind: str
) -> list[str]:
    """Exact module names for peft: each ``nn.Linear`` in the block containers whose name ends with a pattern.

    Resolving up front catches a wrong name (the seed's ``q_proj`` is a text-encoder name) with a
    message listing the transformer's real layer names, instead of a LoRA that trains nothing.
    """
    linear = {
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.split(".")[0] in containers
    }
    chosen: list[str] = []
    for pattern in patterns:
        matches = sorted(
            n for n in linear if n == pattern or n.endswith("." + pattern) or fnmatch.fnmatchcase(n, pattern)
        )
        if not matches:
            suffixes = sorted({n.split(".", 2)[-1] for n in linear})
            raise FlenwheelError(
                f"target module '{pattern}' matches no layer of the {kind} transformer; its block layers are "
                f"named {', '.join(suffixes[:24])}"
            )
        chosen += [m for m in matches if m not in chosen]
    return chosen


def export_state(
    trainable: dict[str, torch.Tensor], rank: int, alpha: float, dtype: str = "bf16", alpha_keys: bool = True
) -> dict[str, torch.Tensor]:
    """PEFT parameter names -> file keys, with alpha/rank folded into lora_B (and ``.alpha`` = rank)."""
    scale = alpha / rank
    out: dict[str, torch.Tensor] = {}
    for name, tensor in trainable.items():
        key = name.replace(".default.weight", ".weight").replace(".default.", ".")
        key = key.removeprefix("base_model.model.")
        value = tensor.detach().float().cpu()
        if ".lora_B." in key:
            value = value * scale
            if alpha_keys:
                out[f"{PREFIX}.{key.rsplit('.lora_B.', 1)[0]}.alpha"] = torch.tensor(float(rank))
        out[f"{PREFIX}.{key}"] = value.to(SAVE_DTYPES[dtype]).contiguous()
    return out


def lora_metadata(config: TrainConfig, data: TrainingData) -> dict[str, Any]:
    """What a LoRA file says about how it was made (``steps`` is added at each save)."""
    return {
        "trainer": config.trainer, "base_model": config.model, "rank": config.lora_rank, "alpha": config.alpha,
        "alpha_folded_into_weights": True, "dataset_version": data.version, "dataset_hash": data.hash,
        "instance_token": config.instance_token or "", "resolution": config.resolution,
        "learning_rate": config.learning_rate, "max_train_steps": config.max_train_steps,
        "target_modules": config.target_modules or "default", "images": len(data.items),
    }


def header(metadata: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata must be str -> str; our fields carry a ``flenwheel.`` prefix, plus the
    kohya-style ``ss_`` names many LoRA browsers show (``ss_network_alpha``: the alpha the weights hold)."""
    out = {"format": "pt", "flenwheel.created": utc_now()}
    for key, value in metadata.items():
        out[f"flenwheel.{key}"] = value if isinstance(value, str) else json.dumps(value)
    aliases = {
        "rank": "ss_network_dim",
        "alpha": "ss_network_alpha",
        "steps": "ss_steps",
        "base_model": "ss_base_model_version",
        "instance_token": "ss_trigger_word",
    }
    for key, alias in aliases.items():
        if key in metadata:
            out[alias] = str(metadata[key])
    if metadata.get("alpha_folded_into_weights") and "rank" in metadata:
        out["ss_network_alpha"] = str(metadata["rank"])
    return out


def save_lora(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write the LoRA atomically (a crash leaves the old file or none, never half a file)."""
    from safetensors.torch import save_file

    destination = Path(path)
    atomic_write_with(
        destination, lambda tmp: save_file(tensors, tmp, metadata=header(metadata)), suffix=".safetensors"
    )
    return destination


def read_metadata(path: str | Path) -> dict[str, str]:
    """The header of a LoRA file (for reports, resume checks and tests)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})
