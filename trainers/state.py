"""What a checkpoint holds, and putting it back: weights, optimiser, schedule, RNG, position.

Together with the deterministic batch order (``batches.py``) this makes a resumed run repeat the
uninterrupted run's losses: the trainable weights are restored bit for bit in fp32, the optimiser
moments and schedule step are restored, and per-step randomness is derived from the step number.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .checkpoint import (
    LORA_FILE,
    TRAINABLE_FILE,
    TRAINING_STATE_FILE,
    Checkpoint,
    CheckpointError,
    write_checkpoint,
)
from .lora_io import header


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def save(
    root: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    exporter: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    metadata: dict[str, Any],
    state: dict[str, Any],
) -> Checkpoint:
    """Write one checkpoint: the usable LoRA (via ``exporter``), raw fp32 weights and the training state."""
    raw = {name: p.detach().float().cpu().contiguous() for name, p in trainable_parameters(model).items()}
    training_state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python_rng": random.getstate(),
    }
    writers = {
        LORA_FILE: lambda path: save_file(
            exporter(raw), str(path), metadata=header({**metadata, "steps": step})
        ),
        TRAINABLE_FILE: lambda path: save_file(raw, str(path)),
        TRAINING_STATE_FILE: lambda path: torch.save(training_state, path),
    }
    return write_checkpoint(root, step, writers, state)


def restore(checkpoint: Checkpoint, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> None:
    """Load a verified checkpoint into the live objects; a different LoRA layout is a clear error."""
    params = trainable_parameters(model)
    saved = load_file(str(checkpoint.path / TRAINABLE_FILE))
    if set(saved) != set(params):
        raise CheckpointError(
            f"{checkpoint.path} was saved with a different LoRA layout (rank or target modules changed); "
            "resume it with the original settings, or set resume: none with a new output_path"
        )
    for name, param in params.items():
        if saved[name].shape != param.shape:
            raise CheckpointError(
                f"{checkpoint.path}: {name} has shape {tuple(saved[name].shape)}, the run "
                f"expects {tuple(param.shape)} (was lora_rank changed?)"
            )
        with torch.no_grad():
            param.copy_(saved[name].to(param.device, param.dtype))
    state = torch.load(checkpoint.path / TRAINING_STATE_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    random.setstate(_as_tuple(state["python_rng"]))


def _as_tuple(value: Any) -> Any:
    """``random.setstate`` wants tuples; a weights-only load may hand lists back."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_as_tuple(v) for v in value)
    return value
