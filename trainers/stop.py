"""Asking a running trainer to save and stop: SIGTERM, SIGINT (Ctrl+C) or a stop-request file.

Signals only set a flag; the loop finishes the current step, saves a checkpoint and exits cleanly,
so a stop never interrupts a save. A second Ctrl+C stops at once (checkpoints are atomic, so
nothing already saved is at risk). The file works on every platform - Windows has no SIGTERM for
a child process - and is what the ComfyUI node's launcher writes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from types import FrameType

STOP_FILE = "stop_request"


class StopFlag:
    def __init__(self, output_dir: Path) -> None:
        self.file = output_dir / STOP_FILE
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Catch SIGTERM/SIGINT (main thread only; elsewhere the stop file still works)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name

    def clear_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    @property
    def requested(self) -> bool:
        if self.reason is None and self.file.exists():
            self.reason = "stop request file"
        return self.reason is not None


def request_stop(output_dir: str | Path) -> Path:
    """Ask the trainer writing into ``output_dir`` to save and stop (any platform, any process)."""
    path = Path(output_dir) / STOP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stop\n", encoding="utf-8")
    return path
