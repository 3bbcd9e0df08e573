"""Starting the trainer as a child process and following its events (used by the ComfyUI nodes).

The trainer runs in its own process so an out-of-memory error or a crash never takes ComfyUI down,
and all GPU memory is returned when it ends. A reader thread turns stdout lines into events and
another keeps the tail of stderr for error reports, so the caller only polls a queue: its thread
sleeps between polls and ComfyUI's server stays responsive. Stopping writes the stop-request file
(every platform) and sends SIGTERM where there is one; the trainer saves a checkpoint and exits.

The child is started through a tiny bootstrap that imports this package from its folder under the
name ``flenwheel``: inside ComfyUI the pack is imported under its folder's name (``ComfyUI-FLENwheel``
is not even a valid module name), so ``python -m flenwheel.trainers`` would not find it.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...trainers.protocol import parse_line
from ...trainers.stop import request_stop
from ..data.errors import FlenwheelError
from ..models.registry import family

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_BOOTSTRAP = (
    "import importlib.util, sys;"
    "root = sys.argv.pop(1);"
    "spec = importlib.util.spec_from_file_location('flenwheel', root + '/__init__.py', "
    "submodule_search_locations=[root]);"
    "module = importlib.util.module_from_spec(spec); sys.modules['flenwheel'] = module;"
    "spec.loader.exec_module(module);"
    "from flenwheel.trainers.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


class TrainingFailed(FlenwheelError):
    """The trainer reported an error or died; the message is its ``error`` event or its last stderr lines."""


def trainer_command(kind: str, config_path: str | Path, python: str | None = None) -> list[str]:
    """The command line that runs this package's trainer in a fresh interpreter.

    Nothing a graph says shapes it: the interpreter is this one (or the caller's, never a widget's), the
    code is the fixed bootstrap above, ``kind`` must be a registered family and the config a file
    FLENwheel wrote (``prepare_run``) or the CLI user named. No shell is involved.
    """
    kind = family(kind).name
    return [python or sys.executable, "-c", _BOOTSTRAP, str(PACKAGE_ROOT), kind, "--config", str(config_path)]


@dataclass
class TrainingResult:
    status: str
    lora_path: str | None
    step: int
    total: int
    checkpoint: str | None
    samples: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class TrainerProcess:
    """One running trainer: ``poll()`` returns new events, ``stop()`` asks it to save and exit."""

    def __init__(
        self, kind: str, config_path: str | Path, output_dir: str | Path, env: dict[str, str] | None = None
    ) -> None:
        self.output_dir = Path(output_dir)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.stop_requested = False
        child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            trainer_command(kind, config_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=child_env,
        )
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            event = parse_line(line)
            if event is not None:
                self.events.put(event)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_tail.append(line.rstrip())

    def poll(self, timeout: float = 0.2) -> list[dict[str, Any]]:
        """Events received since the last poll, waiting at most ``timeout`` seconds for the first."""
        found = []
        try:
            found.append(self.events.get(timeout=timeout))
            while True:
                found.append(self.events.get_nowait())
        except queue.Empty:
            return found

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def finished(self) -> bool:
        """True once the process has exited and every line it wrote has been read."""
        return not self.running and not any(t.is_alive() for t in self._threads) and self.events.empty()

    def stop(self) -> None:
        """Ask for a checkpoint and a clean exit (idempotent)."""
        if self.stop_requested or not self.running:
            return
        self.stop_requested = True
        request_stop(self.output_dir)
        if hasattr(signal, "SIGTERM") and os.name != "nt":
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.running:
            self.process.kill()


def follow(
    process: TrainerProcess,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    poll_seconds: float = 0.2,
) -> TrainingResult:
    """Feed events to ``on_event`` until the trainer exits; ``should_stop`` polled between reads."""
    events: list[dict[str, Any]] = []
    while not process.finished():
        for event in process.poll(poll_seconds):
            events.append(event)
            if on_event is not None:
                on_event(event)
        if should_stop is not None and not process.stop_requested and should_stop():
            process.stop()
    process.process.wait()
    return _result(process, events)


def _result(process: TrainerProcess, events: list[dict[str, Any]]) -> TrainingResult:
    done = next((e for e in reversed(events) if e["event"] == "done"), None)
    error = next((e for e in reversed(events) if e["event"] == "error"), None)
    samples = [path for e in events if e["event"] == "sample" for path in e.get("paths", [])]
    if done is None:
        if error is not None:
            raise TrainingFailed(f"training failed ({error.get('kind')}): {error.get('message')}")
        tail = "\n".join(process.stderr_tail) or "(no output)"
        raise TrainingFailed(
            f"the trainer exited with status {process.process.returncode} without finishing:\n{tail}"
        )
    return TrainingResult(
        done["status"],
        done.get("lora_path"),
        int(done["step"]),
        int(done["total"]),
        done.get("checkpoint"),
        samples,
        events,
    )


def run_training(
    kind: str,
    config_path: str | Path,
    output_dir: str | Path,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    env: dict[str, str] | None = None,
) -> TrainingResult:
    """Start the trainer, follow it to the end, and make sure no child outlives a failure here."""
    process = TrainerProcess(kind, config_path, output_dir, env)
    try:
        return follow(process, on_event, should_stop)
    except BaseException:
        process.stop()
        deadline = time.monotonic() + 120
        while process.running and time.monotonic() < deadline:
            time.sleep(0.2)
        process.kill()
        raise
