"""Train a LoRA version, or reuse it when it is already whole: the one flow behind the node and the turn.

A finished run is recognised by its final LoRA, whose header records the config's step count, so
re-queuing a graph or re-running a turn never trains twice; an unfinished one resumes from its
newest whole checkpoint inside the trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...trainers.config import load_config
from .launcher import TrainingResult, run_training
from .planning import finished_lora


@dataclass
class TrainOutcome:
    """What a call produced: the LoRA (None when the run stopped before its end), and whether it ran."""

    lora: Path | None
    status: str
    step: int
    total: int
    reused: bool
    samples: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.lora is not None and self.status == "finished"

    def summary(self) -> str:
        if self.reused:
            return f"already trained ({self.total} steps): {self.lora}"
        return f"{self.status} at step {self.step}/{self.total}: {self.lora or ''}"


def train_version(
    kind: str,
    config_path: str | Path,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    before_start: Callable[[], None] | None = None,
) -> TrainOutcome:
    """Reuse the config's finished LoRA, or run the trainer process (``before_start`` frees memory first)."""
    config = load_config(config_path, kind)
    done = finished_lora(config)
    if done is not None:
        return TrainOutcome(done, "finished", config.max_train_steps, config.max_train_steps, reused=True)
    if before_start is not None:
        before_start()
    result: TrainingResult = run_training(kind, config_path, config.output_dir, on_event, should_stop)
    lora = Path(result.lora_path) if result.lora_path else None
    return TrainOutcome(lora, result.status, result.step, result.total, reused=False, samples=result.samples)
