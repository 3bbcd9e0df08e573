"""Running one training job: config in, protocol events out, every failure turned into an ``error`` event.

``python -m flenwheel.trainers flux --config cfg.yaml`` and ``flenwheel train flux --config cfg.yaml``
both end here. Exit status: 0 when training finished or was stopped on request (a checkpoint was
saved), 1 for any error (the ``error`` event says what to do).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from ..core.data.errors import FlenwheelError
from .config import TrainConfig, load_config
from .failures import NonFiniteLoss, is_out_of_memory, memory_hints, out_of_memory_message
from .protocol import Reporter


def protocol_stream() -> IO[str]:
    """A private copy of stdout for events; fd 1 then points at stderr so stray prints cannot corrupt it.

    When stdout is not the process's fd 1 (a test runner or notebook captured it), events go there as is.
    """
    try:
        if sys.stdout.fileno() != 1:
            return sys.stdout
    except (AttributeError, OSError, ValueError):
        return sys.stdout
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def train(config: TrainConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Train in this process and return the ``done`` event (errors raise; see ``run_job``)."""
    from .loop import Trainer

    return Trainer(config, reporter).run()


def run_job(kind: str | None, config_path: str | Path, reporter: Reporter | None = None) -> int:
    """Load the config, train, and report any failure as an ``error`` event; returns the exit status."""
    reporter = reporter or Reporter()
    config: TrainConfig | None = None
    trainer = None
    try:
        config = load_config(config_path, kind)
        from .loop import Trainer

        trainer = Trainer(config, reporter)
        trainer.run()
        return 0
    except NonFiniteLoss as exc:
        reporter.emit(
            "error", kind="nan", message=str(exc), step=exc.step, last_checkpoint=exc.last_checkpoint
        )
    except FlenwheelError as exc:
        reporter.emit("error", kind="setup", message=str(exc))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the launcher as an event
        if isinstance(exc, KeyboardInterrupt):
            reporter.emit(
                "error",
                kind="interrupted",
                message="stopped at once by a second Ctrl+C; the newest "
                "checkpoint on disk is complete and resume continues from it",
            )
            return 130
        step = trainer.run_state.step if trainer else 0
        last = trainer._last_checkpoint_path() if trainer else None
        if config is not None and is_out_of_memory(exc):
            reporter.emit(
                "error",
                kind="oom",
                message=out_of_memory_message(config, step, last),
                hints=memory_hints(config),
                step=step,
                last_checkpoint=last,
            )
        else:
            traceback.print_exc(file=sys.stderr)
            reporter.emit(
                "error", kind="crash", message=f"{type(exc).__name__}: {exc}", step=step, last_checkpoint=last
            )
    return 1
