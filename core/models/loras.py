"""LoRAs on a loaded pipeline: load once, switch strengths and sets freely, never reload the base.

Each LoRA file becomes a named peft adapter (file stem + hash prefix, so two files with the same
name never collide and the same file is never loaded twice). Switching from character LoRA v1 to
v2, or changing strengths, only calls ``set_adapters``; the base model stays in memory. Files are
checked before diffusers sees them, so a truncated download or a non-LoRA file fails with a
message that names the file instead of a key error deep inside peft. A file without text-encoder
weights (every LoRA FLENwheel trains) goes into the transformer only: diffusers would otherwise
look for CLIP weights too and log "No LoRA keys associated to CLIPTextModel" on every load.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.atomic import sha256_file
from ..data.errors import ModelLoadError
from ..data.records import LoraRef

if TYPE_CHECKING:
    from .pipelines import PipelineHandle

_LORA_KEY = re.compile(r"(lora_A|lora_B|lora_down|lora_up|lora\.down|lora\.up)")
#: Text-encoder weights in diffusers (text_encoder.*) and kohya (lora_te_*, lora_te1_*) naming.
_TEXT_ENCODER_KEY = re.compile(r"^(text_encoder|lora_te\d?_)")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class LoraError(ModelLoadError):
    """A LoRA file is missing, unreadable or not a LoRA."""


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA to apply: file, strength and (optionally) the adapter name to use."""

    path: str
    strength: float = 1.0
    name: str | None = None


@dataclass(frozen=True)
class LoraInfo:
    path: Path
    sha256: str
    keys: int
    metadata: dict[str, str]
    text_encoder: bool = False


def parse_lora(text: str) -> LoraSpec:
    """``PATH`` or ``PATH:STRENGTH`` (a Windows drive letter is not mistaken for a strength)."""
    head, sep, tail = text.rpartition(":")
    if sep and head and not (len(head) == 1 and tail.startswith(("\\", "/"))):
        try:
            return LoraSpec(head, float(tail))
        except ValueError:
            pass
    return LoraSpec(text, 1.0)


def inspect_lora(path: str | Path) -> LoraInfo:
    """Validate a LoRA safetensors file and read its header metadata.

    Results are remembered per (file, size, mtime): engines re-apply a handle's LoRAs before every
    image, and hashing a 100 MB file each time would cost more than the bookkeeping is worth.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise LoraError(f"LoRA file {file} does not exist")
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _inspected:
        _inspected[key] = _read_lora(file)
    return _inspected[key]


def _read_lora(file: Path) -> LoraInfo:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            keys = list(handle.keys())
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoraError(f"LoRA file {file} is not a readable safetensors file (truncated or corrupt?): {exc}") from None
    lora_keys = [key for key in keys if _LORA_KEY.search(key)]
    if not lora_keys:
        sample = ", ".join(keys[:3]) or "no tensors"
        raise LoraError(f"{file} holds no LoRA weights (no lora_A/lora_B or lora_down/lora_up keys; found {sample})")
    return LoraInfo(path=file.resolve(), sha256=sha256_file(file), keys=len(lora_keys), metadata=metadata,
                    text_encoder=any(_TEXT_ENCODER_KEY.match(key) for key in lora_keys))


_inspected: dict[tuple[str, int, int], LoraInfo] = {}


def adapter_name(info: LoraInfo) -> str:
    stem = _UNSAFE.sub("_", info.path.stem).strip("_") or "lora"
    return f"{stem}_{info.sha256[:8]}"


def loaded_adapters(pipe: Any) -> set[str]:
    listed = pipe.get_list_adapters() if hasattr(pipe, "get_list_adapters") else {}
    return {name for names in listed.values() for name in names}


@contextlib.contextmanager
def _transformer_only(pipe: Any, info: LoraInfo) -> Iterator[None]:
    """Skip the pipeline's text-encoder step while loading a LoRA that has no text-encoder weights."""
    skip = not info.text_encoder and hasattr(pipe, "load_lora_into_text_encoder")
    if skip:
        pipe.load_lora_into_text_encoder = lambda *args, **kwargs: None
    try:
        yield
    finally:
        if skip:
            del pipe.load_lora_into_text_encoder


def set_loras(handle: PipelineHandle, specs: list[LoraSpec]) -> list[LoraRef]:
    """Make exactly ``specs`` active at their strengths; returns what records should cite.

    Adapters loaded earlier but not listed stay in memory, inactive, for a quick switch back;
    ``unload_loras`` frees them. With no specs every adapter gets weight 0, which reproduces the
    base model exactly.
    """
    pipe = handle.pipe
    active: list[tuple[str, float]] = []
    refs: list[LoraRef] = []
    present = loaded_adapters(pipe)
    for spec in specs:
        info = inspect_lora(spec.path)
        name = spec.name or adapter_name(info)
        if name not in present:
            try:
                with _transformer_only(pipe, info):
                    pipe.load_lora_weights(str(info.path), adapter_name=name)
            except (ValueError, KeyError, RuntimeError) as exc:
                raise LoraError(f"cannot apply LoRA {info.path} to the {handle.kind} model: {exc}") from None
            present.add(name)
        active.append((name, spec.strength))
        refs.append(LoraRef(path=str(info.path), strength=spec.strength, sha256=info.sha256, name=name))
    if active:
        pipe.set_adapters([name for name, _ in active], adapter_weights=[weight for _, weight in active])
    elif present:
        pipe.set_adapters(sorted(present), adapter_weights=[0.0] * len(present))
    handle.loras = [ref.model_dump() for ref in refs]
    return refs


def unload_loras(handle: PipelineHandle) -> None:
    """Remove every adapter, returning the pipeline to its base weights."""
    present = sorted(loaded_adapters(handle.pipe))
    if present:
        handle.pipe.delete_adapters(present)
    handle.loras = []
