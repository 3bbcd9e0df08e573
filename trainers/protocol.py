"""The trainer's line protocol: one JSON object per line on stdout, human logs on stderr.

Whoever launches the trainer (the ComfyUI node, a script, a web UI) reads stdout line by line and
never has to scrape log text: ``phase`` (what the trainer is doing before its first step - "loading
models", "caching latents" with done/total, "encoding captions", "loading transformer" - so a progress
view has something to show during the minutes before ``start``), ``start``, ``step`` (step, total, loss,
lr, it/s, ETA), ``checkpoint``, ``sample`` (image paths), ``done`` and ``error``. Every event and
every log line is also appended to ``train_log.jsonl`` in the output folder, so the loss curve and the
history survive the process.
Libraries that print to stdout would corrupt the stream, so the entry point hands this module a
private copy of stdout and points file descriptor 1 at stderr.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import IO, Any

EVENTS = ("phase", "start", "step", "checkpoint", "sample", "done", "error")
LOG_FILE = "train_log.jsonl"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf; a diverged loss is reported as a string so the line stays parseable."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _say(line: str) -> None:
    """One line on stderr in a single write: data-parallel ranks leave an all-reduce together and
    share one pipe, and ``print`` writes the text and the newline separately, so their lines merged."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Reporter:
    """Writes events (stdout + log file) and log lines (stderr + log file); silent on ranks other than 0."""

    def __init__(self, stream: IO[str] | None = None, log_path: Path | None = None, rank: int = 0) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.rank = rank
        self.log_path = log_path
        self._log: IO[str] | None = None

    def open_log(self, path: Path) -> None:
        """Append to ``train_log.jsonl`` (rank 0 only); earlier runs' lines stay for the loss curve."""
        if self.rank != 0:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = path
        self._log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the run

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _record(self, payload: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(payload, ensure_ascii=False) + "\n")

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        payload = _clean({"event": event, "time": round(time.time(), 3), **fields})
        if self.rank == 0:
            self.stream.write(json.dumps(payload, ensure_ascii=False) + "\n")
            self.stream.flush()
            self._record(payload)
            if event == "error":  # a person running the CLI reads stderr, not JSON
                _say(f"[flenwheel-train] error: {payload.get('message')}")
        return payload

    def phase(self, name: str, done: int | None = None, total: int | None = None) -> None:
        """A ``phase`` event: what the trainer is busy with before training starts (``done``/``total`` when
        it counts items)."""
        counts = {"done": done, "total": total} if total is not None else {}
        self.emit("phase", phase=name, **counts)

    def log(self, message: str, level: str = "info", all_ranks: bool = False) -> None:
        """A human-readable line on stderr; ``all_ranks`` lets every process speak (tagged with its rank)."""
        if self.rank != 0 and not all_ranks:
            return
        tag = f"[flenwheel-train rank {self.rank}]" if all_ranks else "[flenwheel-train]"
        _say(f"{tag} {level}: {message}")
        self._record(
            {
                "event": "log",
                "time": round(time.time(), 3),
                "level": level,
                "rank": self.rank,
                "message": message,
            }
        )


def parse_line(line: str) -> dict[str, Any] | None:
    """An event from one stdout line, or None for anything that is not a protocol line."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        return None
    return payload


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All events of a ``train_log.jsonl``; a torn last line (kill -9 mid-write) is skipped."""
    file = Path(path)
    if not file.is_file():
        return []
    with open(file, encoding="utf-8", errors="replace") as handle:
        return [event for event in map(parse_line, handle) if event is not None]


def loss_history(events: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(step, loss) pairs, the last report of each step winning: a resumed run redoes a few steps."""
    by_step: dict[int, float] = {}
    for event in events:
        if event.get("event") == "step" and isinstance(event.get("loss"), (int, float)):
            by_step[int(event["step"])] = float(event["loss"])
    return sorted(by_step.items())
