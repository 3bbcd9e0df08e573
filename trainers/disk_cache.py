"""Latents and text embeddings kept on disk, so a resumed run starts training in seconds.

Loading T5-XXL or Qwen2.5-VL only to recompute the embeddings of an interrupted run costs minutes
and gigabytes. Cached tensors live in ``<output>/cache/{latents,text}/`` under a key that hashes
everything they depend on: the model, precision, sequence/condition sizes, and the *content* ids
of the images (pixel or file hashes), never their paths. When every text embedding a run needs is
on disk, the text encoders are not loaded at all. Files are written atomically; one that cannot be
read is simply computed again. After replacing a model's files in place, delete the cache folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..core.data.atomic import atomic_write_with

#: Part of every key: bump it when the way a cached tensor is computed changes, so old caches are
#: recomputed instead of mixed in (2: Qwen-Edit condition images are resized as the pipeline does).
FORMAT = 2
Tensors = dict[str, torch.Tensor]


class DiskCache:
    def __init__(self, folder: Path, salt: list[Any], enabled: bool = True, writable: bool = True) -> None:
        self.folder = folder
        self.salt = [FORMAT, *salt]
        self.enabled = enabled
        self.writable = writable
        self.hits = 0

    def path(self, kind: str, key: str) -> Path:
        digest = hashlib.sha256(json.dumps([self.salt, kind, key]).encode("utf-8")).hexdigest()
        return self.folder / kind / f"{digest[:40]}.safetensors"

    def has_all(self, kind: str, keys: list[str]) -> bool:
        """True when every entry is on disk and its header reads (then the encoders can stay unloaded)."""
        return self.enabled and all(_readable(self.path(kind, key)) for key in keys)

    def load(self, kind: str, key: str, device: torch.device) -> Tensors | None:
        path = self.path(kind, key)
        if not (self.enabled and path.is_file()):
            return None
        try:
            tensors = load_file(str(path))
        except (OSError, ValueError, RuntimeError, SafetensorError):
            return None
        self.hits += 1
        return {name: value.to(device) for name, value in tensors.items()}

    def save(self, kind: str, key: str, tensors: Tensors) -> Tensors:
        if self.enabled and self.writable:
            plain = {name: value.detach().contiguous().cpu() for name, value in tensors.items()}
            atomic_write_with(self.path(kind, key), lambda tmp: save_file(plain, tmp), suffix=".safetensors")
        return tensors


def _readable(path: Path) -> bool:
    """A whole safetensors file: the header parses and covers the file (safetensors checks both)."""
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (OSError, ValueError, RuntimeError, SafetensorError):
        return False
    return True
