"""Crash-safe file writes.

A crash (exception, kill -9, power loss) must never leave a half-written image, metadata file
or checkpoint where a reader expects a whole one. Everything is written to a temporary file in
the destination's folder and moved into place with ``os.replace``, which is atomic on POSIX and
Windows when source and destination share a filesystem.

``mkstemp`` creates its file with mode 0600; the writer widens it to what the umask gives (0644
under umask 022), so a LoRA copied to a shared ``models/loras`` or read by a ComfyUI running as
another user works. A temporary file is named ``.<name>.<8 random chars><suffix>``; a kill can
leave one behind, and ``remove_stale_temps`` recognises and removes them at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

_CHUNK = 1 << 20
_umask_lock = threading.Lock()


def umask_mode(directory: bool = False) -> int:
    """The mode a plain ``open()`` (or ``mkdir``) would give under the current umask."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _temp_file(dest: Path, suffix: str) -> tuple[int, str]:
    """A new temporary sibling of ``dest`` with the umask's mode (not mkstemp's 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    os.fchmod(fd, umask_mode())
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` only on success."""
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open only writes ('w' or 'wb')")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_file(dest, ".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON (UTF-8, indented, keys in insertion order) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_with(path: str | os.PathLike, writer: Callable[[str], None], suffix: str = "") -> None:
    """Let ``writer`` produce a file at a temporary path (for libraries that want a filename), then move it."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_file(dest, suffix or dest.suffix)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, umask_mode())  # some writers (safetensors) recreate the file with their own mode
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` so that ``dst`` is either absent/old or a whole copy."""
    with open(src, "rb") as source, atomic_open(dst, "wb") as target:
        shutil.copyfileobj(source, target, _CHUNK)


def stale_temps(folder: str | os.PathLike) -> list[Path]:
    """The temporary files a killed atomic write left directly in ``folder`` (none when it is not a folder).

    Only names of this module's shape count (``.<name>.<8 chars>.tmp`` or
    ``.<name>.<8 chars><suffix of name>``), so no file of the user's is ever mistaken for one.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match and path.is_file() and not path.is_symlink() and (
                match["suffix"] == ".tmp" or match["name"].endswith(match["suffix"])):
            found.append(path)
    return sorted(found)


def remove_stale_temps(folder: str | os.PathLike) -> list[str]:
    """Delete ``stale_temps(folder)``; returns their names. Call it only while no writer can be at work there."""
    removed = []
    for path in stale_temps(folder):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        removed.append(path.name)
    return removed


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]+)$")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large checkpoints stay cheap on memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
