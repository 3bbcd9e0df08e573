"""Loading FLUX and Qwen-Image-Edit-2509 pipelines: one loader for real weights and tiny test models.

A pipeline is loaded once and handed around as a ``PipelineHandle`` (the loader node's output),
so ComfyUI's cache keeps the model in memory across runs. Tiny models and FLUX.1-dev go through
the same ``from_pretrained`` call; only the folder differs.

Qwen-Image-Edit-2509 resizes every input image to about 1024x1024 for the VAE and 384x384 for the
vision encoder, whatever output size is asked (module constants in diffusers). ``qwen_edit_sizes``
makes both configurable per call without editing diffusers: at 64 px a tiny edit takes 0.1 s
instead of 13 s, and on a real model smaller condition sizes trade detail for memory.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelLoadError

KINDS = ("flux", "qwen-edit")
DTYPES = ("bf16", "fp16", "fp32")
DEFAULT_MODELS = {
    "flux": "black-forest-labs/FLUX.1-dev",
    "qwen-edit": "Qwen/Qwen-Image-Edit-2509",
}
_EDIT_PLUS_MODULE = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus"
_sizes_lock = threading.RLock()


@dataclass
class PipelineHandle:
    """A loaded pipeline plus what it was loaded from, so records can name the model exactly."""

    kind: str
    pipe: Any
    source: str
    dtype: str
    device: str
    loras: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.kind} from {self.source} ({self.dtype} on {self.device})"


def torch_dtype(name: str) -> Any:
    """``bf16`` / ``fp16`` / ``fp32`` to a torch dtype, with a clear error otherwise."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if name not in table:
        raise ModelLoadError(f"unknown dtype '{name}'; use one of {', '.join(DTYPES)}")
    return table[name]


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """diffusers >= 0.42 names the argument ``dtype`` (``torch_dtype`` warns); older releases only know ``torch_dtype``."""
    import diffusers
    from packaging.version import Version

    return {"dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype": dtype}


def default_device() -> str:
    """ComfyUI's choice of device inside ComfyUI; outside it, CUDA when present, else CPU."""
    try:
        import comfy.model_management as model_management
    except ImportError:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(model_management.get_torch_device())


def looks_like_path(source: str) -> bool:
    """A hub id is ``org/name``; anything that exists, is absolute or starts with ``.``/``~`` is a path."""
    return (
        os.path.isabs(source)
        or source.startswith((".", "~"))
        or os.path.exists(source)
        or source.count("/") != 1
        or "\\" in source
    )


def check_source(source: str, kind: str) -> str:
    """Resolve a local folder (or keep a hub id), failing with a message that names what is missing."""
    if not source:
        raise ModelLoadError(f"no {kind} model given; pass a diffusers folder or a hub id like {DEFAULT_MODELS[kind]}")
    if not looks_like_path(source):
        return source
    folder = Path(source).expanduser()
    if not folder.exists():
        raise ModelLoadError(f"{kind} model folder {folder} does not exist")
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"{folder} is not a diffusers pipeline folder (no model_index.json); for single-file checkpoints "
            "use the single-file loader options"
        )
    return str(folder.resolve())


def _pipeline_class(kind: str) -> Any:
    if kind == "flux":
        from diffusers import FluxPipeline

        return FluxPipeline
    if kind == "qwen-edit":
        from diffusers import QwenImageEditPlusPipeline

        return QwenImageEditPlusPipeline
    raise ModelLoadError(f"unknown pipeline kind '{kind}'; expected one of {', '.join(KINDS)}")


def load_pipeline(kind: str, source: str, dtype: str = "bf16", device: str | None = None) -> PipelineHandle:
    """Load a diffusers pipeline folder or hub id and move it to ``device``."""
    resolved = check_source(source, kind)
    extra: dict[str, Any] = {}
    if kind == "qwen-edit" and looks_like_path(resolved):
        from .qwen_processor import load_processor

        extra["processor"] = load_processor(Path(resolved) / "processor")
    try:
        pipe = _pipeline_class(kind).from_pretrained(resolved, **dtype_kwarg(torch_dtype(dtype)), **extra)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {kind} model from {resolved}: {exc}") from None
    target = device or default_device()
    pipe.to(target)
    pipe.set_progress_bar_config(disable=True)
    return PipelineHandle(kind=kind, pipe=pipe, source=resolved, dtype=dtype, device=target)


@contextlib.contextmanager
def qwen_edit_sizes(vae_pixels: int | None = None, condition_pixels: int | None = None) -> Iterator[None]:
    """Run Qwen-Image-Edit-2509 with other input-image areas (pixels) than diffusers' 1024² / 384².

    The pipeline reads these module constants at call time; they are set for the duration of the
    block under a lock, so concurrent edits never see each other's sizes.
    """
    import importlib

    module = importlib.import_module(_EDIT_PLUS_MODULE)
    with _sizes_lock:
        saved = (module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE)
        module.VAE_IMAGE_SIZE = vae_pixels or saved[0]
        module.CONDITION_IMAGE_SIZE = condition_pixels or saved[1]
        try:
            yield
        finally:
            module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE = saved
