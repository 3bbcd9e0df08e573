"""Turning a failed run into an ``error`` event a user can act on.

Out of memory is the most common way a LoRA run dies; the event lists the memory options this
config has not used yet, cheapest first, and points at the checkpoint a resume will continue from.
A NaN/inf loss stops training before the broken step is applied or saved, so the last checkpoint on
disk is still a good one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..core.data.errors import FlenwheelError

if TYPE_CHECKING:
    from .config import TrainConfig


class NonFiniteLoss(FlenwheelError):
    """The loss (or the weights) became NaN or infinite; nothing from that step was kept."""

    def __init__(self, step: int, value: float, last_checkpoint: str | None) -> None:
        self.step = step
        self.value = value
        self.last_checkpoint = last_checkpoint
        kept = (
            f"the last good checkpoint is {last_checkpoint}"
            if last_checkpoint
            else "no checkpoint was saved yet"
        )
        super().__init__(
            f"the loss became {value} at step {step}; training stopped and {kept}. Lower learning_rate "
            "(e.g. by 2-10x), add lr_warmup_steps, or keep mixed_precision: bf16 rather than fp16"
        )


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "can't allocate memory" in text
    )


def memory_hints(config: TrainConfig) -> list[str]:
    """Memory options this config does not use yet, roughly in order of cost to quality."""
    hints = []
    if not config.gradient_checkpointing:
        hints.append("gradient_checkpointing: true (about 40% less activation memory, ~20% slower)")
    if not (config.cache_latents and config.cache_text_embeddings):
        hints.append("cache_latents: true and cache_text_embeddings: true (the text encoders leave the GPU)")
    if config.optimizer == "adamw":
        hints.append("optimizer: adamw8bit (8-bit optimiser states)")
    if config.quantize == "none":
        hints.append("quantize: fp8 (base weights in 8 bits, close to bf16's losses)")
    if config.quantize != "nf4" and not config.blocks_to_swap and config.trainer:
        most = config.model_family.max_blocks_to_swap
        hints.append(f"blocks_to_swap: {min(16, most)} (frozen blocks wait in CPU memory; up to {most})")
    if config.quantize != "nf4" and not config.blocks_to_swap:
        hints.append("quantize: nf4 (4-bit base model, QLoRA)")
    if config.batch_size > 1:
        hints.append(
            "batch_size: 1 with gradient_accumulation_steps: "
            f"{config.batch_size * config.gradient_accumulation_steps}"
        )
    if config.resolution > 512:
        hints.append(f"resolution: {max(512, config.resolution - 256)} (fewer image tokens)")
    if config.lora_rank > 16:
        hints.append("lora_rank: 16")
    if config.mixed_precision == "no":
        hints.append("mixed_precision: bf16")
    return hints or ["close other programs using the GPU, or train on a card with more memory"]


def out_of_memory_message(config: TrainConfig, step: int, last_checkpoint: str | None) -> str:
    where = f"at step {step}" if step else "while loading or caching"
    resume = f"; resume continues from {last_checkpoint}" if last_checkpoint else ""
    return f"out of memory {where}. Try: " + "; ".join(memory_hints(config)) + resume
