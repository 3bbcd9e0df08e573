"""Random LoRAs for the tiny FLUX.1, FLUX.2 [klein] and Qwen-Image-Edit models, saved as trained ones are.

Tests, the demo and the benchmark need LoRA files without a training run. These have the
trainer's layout (``transformer.<module>.lora_A.weight``, written by diffusers'
``save_lora_weights``) and a random ``lora_B``, so, unlike a freshly initialised LoRA, they
visibly change the output. The pipeline kind is read from the folder's ``model_index.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]
_QWEN_EDIT = ("QwenImageEditPlusPipeline", "QwenImageEditPipeline")


def _pipeline_class(folder: Path) -> str:
    return json.loads((folder / "model_index.json").read_text(encoding="utf-8")).get("_class_name", "")


def make_tiny_lora(
    pipeline_folder: str | Path, out_file: str | Path, seed: int = 0, rank: int = 4, scale: float = 0.5
) -> Path:
    """Write a random LoRA for the tiny transformer in ``pipeline_folder`` (any tiny kind) to ``out_file``."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = Path(pipeline_folder)
    name = _pipeline_class(folder)
    if name in _QWEN_EDIT:
        from diffusers import QwenImageEditPlusPipeline as Pipeline
        from diffusers import QwenImageTransformer2DModel as Transformer
    elif name == "Flux2KleinPipeline":
        from diffusers import Flux2KleinPipeline as Pipeline
        from diffusers import Flux2Transformer2DModel as Transformer
    else:
        from diffusers import FluxPipeline as Pipeline
        from diffusers import FluxTransformer2DModel as Transformer

    torch.manual_seed(seed)
    transformer = Transformer.from_pretrained(folder / "transformer")
    transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGET_MODULES)
    )
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * scale)
    target = Path(out_file)
    Pipeline.save_lora_weights(
        target.parent, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=target.name
    )
    return target
