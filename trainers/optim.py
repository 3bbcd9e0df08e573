"""Optimisers and learning-rate schedules named in the config.

``adamw`` is torch's; ``adamw8bit`` (bitsandbytes) keeps the two Adam moments in 8 bits, which saves
about 6 bytes per trained parameter; ``prodigy`` (prodigyopt) estimates its own step size and
multiplies it by ``learning_rate``, so it wants about 1.0 (the default when none is set); far below
that it barely trains, which the run's log says. Missing packages fail before the model loads, with
the install line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..core.data.availability import require
from ..core.data.errors import MissingDependencyError

if TYPE_CHECKING:
    from .config import TrainConfig


def check_available(config: TrainConfig) -> None:
    """Fail in the first second, not after a model load, when the optimiser cannot be built here."""
    if config.optimizer == "adamw8bit":
        if not torch.cuda.is_available():
            raise MissingDependencyError(
                "optimizer: adamw8bit needs an NVIDIA GPU (bitsandbytes); use adamw here"
            )
        require("bitsandbytes", "optimizer: adamw8bit")
    if config.optimizer == "prodigy":
        require("prodigyopt", "optimizer: prodigy")


PRODIGY_MIN_LR = 0.1


def learning_rate_warning(config: TrainConfig) -> str | None:
    """A warning for the log when prodigy is given an Adam-sized learning rate (it would barely train)."""
    if config.optimizer == "prodigy" and config.learning_rate < PRODIGY_MIN_LR:
        return (
            f"optimizer prodigy with learning_rate {config.learning_rate:g}: prodigy multiplies its own "
            f"step-size estimate by learning_rate and expects about 1.0; below {PRODIGY_MIN_LR} it barely "
            "trains. Remove learning_rate from the config (prodigy then uses 1.0) or set it near 1.0"
        )
    return None


def build_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = {"lr": config.learning_rate, "weight_decay": config.weight_decay}
    if config.optimizer == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, betas=(0.9, 0.999), eps=1e-8, **kwargs)
    if config.optimizer == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(params, betas=(0.9, 0.99), use_bias_correction=True, safeguard_warmup=True, **kwargs)
    return torch.optim.AdamW(params, betas=(0.9, 0.999), eps=1e-8, **kwargs)


def build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer) -> Any:
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=config.max_train_steps,
    )
