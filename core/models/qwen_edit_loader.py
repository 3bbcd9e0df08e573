"""Loading Qwen-Image-Edit-2509 for enrichment: folder or hub id, optional single-file transformer, LoRAs.

The base model (about 20 B parameters in the transformer plus a 7 B text encoder) is kept loaded
in this process and shared by every handle made from the same source and memory options, so a
graph that only changes LoRAs or their strengths re-runs in seconds: the LoRA set is a property
of each handle and is switched onto the shared pipeline right before that handle edits. Loading
a different base releases the previous one first (its handles then refuse to run), because two
Qwen-Image-Edit models never fit on one consumer GPU together.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data.errors import ModelLoadError
from .device_memory import free_memory
from .loras import LoraSpec, loaded_adapters, set_loras
from .pipelines import LoadOptions, PipelineHandle, check_source, default_device, load_pipeline
from .registry import QWEN_EDIT_2509

KIND = QWEN_EDIT_2509.name
_lock = threading.RLock()


@dataclass
class _SharedBase:
    """The one base pipeline kept loaded, and the handles that use it."""

    key: tuple[Any, ...] | None = None
    pipe: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    handles: list[weakref.ref] = field(default_factory=list)


_shared = _SharedBase()


def _release_shared() -> None:
    for ref in _shared.handles:
        handle = ref()
        if handle is not None:
            handle.pipe = None
    _shared.key, _shared.pipe, _shared.options, _shared.handles = None, None, {}, []
    free_memory()


def release_qwen_edit() -> None:
    """Free the shared base model (its handles stop working) to give the memory back."""
    with _lock:
        _release_shared()


def _load_base(source: str, transformer_file: Path | None, options: LoadOptions,
               device: str) -> PipelineHandle:
    if transformer_file is None:
        return load_pipeline(KIND, source, options=options)
    from .qwen_single_file import load_qwen_transformer

    transformer = load_qwen_transformer(transformer_file, source, options, device)
    handle = load_pipeline(KIND, source, options=options.after_transformer_file(),
                           components={"transformer": transformer})
    handle.options.update(quantize=options.quantize, transformer_file=str(transformer_file))
    return handle


def load_qwen_edit(source: str, transformer_file: str | Path | None = None,
                   options: LoadOptions | None = None, loras: Sequence[LoraSpec] = (),
                   reuse: bool = True, before_load: Callable[[], None] | None = None) -> PipelineHandle:
    """A handle on Qwen-Image-Edit-2509 with ``loras`` active, reusing the loaded base when it matches.

    ``source`` is a diffusers folder or hub id; ``transformer_file`` (optional) is a ComfyUI
    single-file transformer that replaces the folder's (see ``qwen_single_file``). ``before_load``
    runs only when a base model is really about to be read (ComfyUI frees its own models there).
    """
    options = options or LoadOptions()
    options.validate()
    device = options.device or default_device()
    options = replace(options, device=device)
    resolved = check_source(source, KIND)
    file = Path(transformer_file).expanduser().resolve() if transformer_file else None
    if file is not None and not file.is_file():
        raise ModelLoadError(f"transformer checkpoint {file} does not exist")
    key = (resolved, str(file) if file else None, tuple(sorted(options.to_json().items())))
    with _lock:
        if not (reuse and _shared.key == key and _shared.pipe is not None):
            _release_shared()
            if before_load is not None:
                before_load()
            base = _load_base(resolved, file, options, device)
            _shared.key, _shared.pipe, _shared.options = key, base.pipe, dict(base.options)
        handle = PipelineHandle(kind=KIND, pipe=_shared.pipe, source=resolved, dtype=options.dtype,
                                device=device, options=dict(_shared.options))
        _shared.handles.append(weakref.ref(handle))
        set_loras(handle, list(loras))
    return handle


def activate_loras(handle: PipelineHandle) -> None:
    """Make the pipeline run with this handle's LoRAs, cheaply when they are already loaded.

    Several handles can share one pipeline with different LoRA sets; only adapter weights change.
    """
    if handle.pipe is None:
        raise ModelLoadError(
            "this Qwen-Image-Edit model was unloaded because another base model was loaded; "
            "run its loader again"
        )
    specs = [LoraSpec(ref["path"], ref["strength"], ref.get("name")) for ref in handle.loras]
    present = loaded_adapters(handle.pipe)
    if specs and all(spec.name in present for spec in specs):
        handle.pipe.set_adapters([spec.name for spec in specs],
                                 adapter_weights=[spec.strength for spec in specs])
    elif specs or present:
        set_loras(handle, specs)


def model_label(handle: PipelineHandle) -> str:
    """What records cite as the model: the single-file transformer when one was used, else the source."""
    return str(handle.options.get("transformer_file") or handle.source)
