"""Checkpoints that survive anything: written under a temporary name, renamed only when whole.

A checkpoint folder ``checkpoints/step_000250/`` holds the usable LoRA (``lora.safetensors``, the
same format as the final file), the raw trainable weights in fp32 (``trainable.safetensors``, for
an exact resume), the optimiser, scheduler and RNG states (``training_state.pt``) and
``state.json`` - step, data position and the sha256 of every other file - written last.

Everything is written into ``.step_000250.tmp-<random>`` first, fsynced, and the folder is renamed in
one ``os.rename``. A kill -9 at any moment therefore leaves either no ``step_*`` folder or a whole
one; leftover ``.tmp`` folders are never picked and are removed at the next start. Resume still
checks every file against ``state.json`` and falls back to the next older checkpoint if one does not
match (a disk that lost data), so a bad checkpoint is never loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.data.atomic import sha256_file, umask_mode
from ..core.data.errors import FlenwheelError

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.json"
LORA_FILE = "lora.safetensors"
TRAINABLE_FILE = "trainable.safetensors"
TRAINING_STATE_FILE = "training_state.pt"
_NAME = re.compile(r"^step_(\d{6,})$")


class CheckpointError(FlenwheelError):
    """A checkpoint is incomplete, changed or from an incompatible run."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]

    @property
    def lora(self) -> Path:
        return self.path / LORA_FILE


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_checkpoint(
    root: Path, step: int, writers: dict[str, Callable[[Path], None]], state: dict[str, Any]
) -> Checkpoint:
    """Create ``root/step_N`` atomically; each writer fills one file.

    An existing ``step_N`` (from a resume of an older checkpoint) is renamed aside, never lost.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        staging.chmod(umask_mode(directory=True))  # mkdtemp's 0700 would hide checkpoints from other users
        hashes = {}
        for name, write in writers.items():
            target = staging / name
            write(target)
            with open(target, "rb") as handle:
                os.fsync(handle.fileno())
            hashes[name] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
        full_state = {**state, "step": step, "files": hashes, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with open(staging / STATE_FILE, "w", encoding="utf-8") as handle:
            json.dump(full_state, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(staging)
        if final.exists():
            final.rename(root / f"{final.name}.superseded-{int(time.time())}")
        os.rename(staging, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Checkpoint(final, step, full_state)


def verify(path: Path, deep: bool = True) -> Checkpoint:
    """Load ``state.json`` and check every listed file (size, and sha256 when ``deep``)."""
    state_file = path / STATE_FILE
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} has no readable {STATE_FILE} ({exc})") from None
    files = state.get("files")
    if not isinstance(files, dict) or TRAINABLE_FILE not in files or TRAINING_STATE_FILE not in files:
        raise CheckpointError(f"{path}/{STATE_FILE} does not list the checkpoint's files")
    for name, info in files.items():
        file = path / name
        if not file.is_file() or file.stat().st_size != info.get("bytes"):
            raise CheckpointError(f"{file} is missing or has the wrong size")
        if deep and sha256_file(file) != info.get("sha256"):
            raise CheckpointError(f"{file} does not match its recorded sha256")
    return Checkpoint(path, int(state["step"]), state)


def list_checkpoints(root: Path) -> list[Path]:
    """Complete-named checkpoint folders, newest step first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def newest_valid(root: Path, warn: Callable[[str], None] | None = None) -> Checkpoint | None:
    """The newest checkpoint that verifies; broken ones are reported and skipped, never deleted."""
    for path in list_checkpoints(root):
        try:
            return verify(path)
        except CheckpointError as exc:
            if warn:
                warn(f"skipping checkpoint {path.name}: {exc}")
    return None


def remove_stale_staging(root: Path) -> list[str]:
    """Delete half-written ``.step_*.tmp-*`` (and half-deleted) folders left by a killed run.

    None of them was ever picked by resume, so nothing of value is lost.
    """
    removed = []
    if root.is_dir():
        for path in root.iterdir():
            if (
                path.is_dir()
                and path.name.startswith(".step_")
                and (".tmp-" in path.name or path.name.endswith(".deleting"))
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    return removed


def prune(root: Path, keep_last_n: int, protect: Path | None = None) -> list[str]:
    """Keep the newest ``keep_last_n`` checkpoints (0 keeps all); ``protect`` is never removed."""
    if keep_last_n <= 0:
        return []
    removed = []
    for path in list_checkpoints(root)[keep_last_n:]:
        if protect is not None and path.resolve() == protect.resolve():
            continue
        doomed = path.with_name(f".{path.name}.deleting")
        path.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(path.name)
    return removed
