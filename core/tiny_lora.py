"""Random character LoRAs for the tiny FLUX model, saved exactly as trained ones are.

Tests, the demo and the benchmark need LoRA files without a training run. These have the
trainer's layout (``transformer.<module>.lora_A.weight``, written by diffusers'
``save_lora_weights``) and a random ``lora_B``, so, unlike a freshly initialised LoRA, they
visibly change the output.
"""

from __future__ import annotations

from pathlib import Path

TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0"]


def make_tiny_lora(
    pipeline_folder: str | Path, out_file: str | Path, seed: int = 0, rank: int = 4, scale: float = 0.5
) -> Path:
    """Write a random LoRA for the tiny FLUX transformer in ``pipeline_folder`` to ``out_file``."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel.from_pretrained(Path(pipeline_folder) / "transformer")
    transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGET_MODULES)
    )
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * scale)
    target = Path(out_file)
    FluxPipeline.save_lora_weights(
        target.parent, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=target.name
    )
    return target
