"""Random LoRAs for any tiny model of a registered family, saved as trained ones are.

Tests, the demo and the benchmark need LoRA files without a training run. These have the
trainer's layout (``transformer.<module>.lora_A.weight``, written by diffusers'
``save_lora_weights``) and a random ``lora_B``, so, unlike a freshly initialised LoRA, they
visibly change the output. The pipeline class is read from the folder's ``model_index.json`` and
the transformer class from the registry entry of the family using that pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]


def _classes(folder: Path) -> tuple[Any, Any]:
    """The diffusers pipeline and transformer classes of the tiny model in ``folder``."""
    import diffusers

    from ..models.registry import families

    name = json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name", "")
    entry = next((entry for entry in families() if entry.pipeline_class == name), None)
    if entry is None:
        raise ValueError(f"{folder} holds a {name or 'unknown'} pipeline, which no registered family uses")
    return getattr(diffusers, entry.pipeline_class), getattr(diffusers, entry.transformer_class)


def make_tiny_lora(
    pipeline_folder: str | Path, out_file: str | Path, seed: int = 0, rank: int = 4, scale: float = 0.5
) -> Path:
    """Write a random LoRA for the tiny transformer in ``pipeline_folder`` (any tiny kind) to ``out_file``."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = Path(pipeline_folder)
    pipeline_class, transformer_class = _classes(folder)

    torch.manual_seed(seed)
    transformer = transformer_class.from_pretrained(folder / "transformer")
    transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGET_MODULES)
    )
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * scale)
    target = Path(out_file)
    pipeline_class.save_lora_weights(
        target.parent, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=target.name
    )
    return target
