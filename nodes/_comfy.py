"""The only place nodes touch ComfyUI internals, each import lazy and optional.

Outside ComfyUI (tests, scripts) every helper degrades to a no-op, so nodes stay testable without
ComfyUI installed. Progress updates double as interrupt points: ComfyUI's ProgressBar hook raises
its interrupt exception when the user presses Cancel, so engines commit each finished item before
reporting it and an interrupt never loses finished work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

PREVIEW_SIZE = 512

ProgressFn = Callable[[int, int, "Image.Image | None"], None]


def comfy_progress(total: int) -> ProgressFn:
    """A progress callback mirrored to ComfyUI's ProgressBar (with previews), or a no-op outside it."""
    try:
        from comfy.utils import ProgressBar
    except ImportError:
        return lambda done, total_, preview=None: None
    bar = ProgressBar(total)

    def update(done: int, total_: int, preview: Image.Image | None = None) -> None:
        bar.update_absolute(done, total_, ("JPEG", preview, PREVIEW_SIZE) if preview is not None else None)

    return update


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception if the user cancelled (no-op outside ComfyUI)."""
    try:
        import comfy.model_management as model_management
    except ImportError:
        return
    model_management.throw_exception_if_processing_interrupted()


def interrupt_requested() -> bool:
    """Poll ComfyUI's interrupt flag without raising (for loops that must clean up first)."""
    try:
        import comfy.model_management as model_management
    except ImportError:
        return False
    return bool(model_management.processing_interrupted())


def prompt_server() -> Any | None:
    """ComfyUI's PromptServer instance, or None outside ComfyUI."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def comfyui_version() -> str | None:
    """The running ComfyUI's version ("0.12.1"), or None outside ComfyUI (or one too old to say)."""
    try:
        from comfyui_version import __version__
    except ImportError:
        return None
    return str(__version__)


def listen_address() -> str:
    """ComfyUI's ``--listen`` value (comma-separated addresses), 127.0.0.1 (its default) outside it."""
    try:
        from comfy.cli_args import args
    except ImportError:
        return "127.0.0.1"
    return str(getattr(args, "listen", None) or "127.0.0.1")


def send_event(event: str, data: dict[str, Any]) -> None:
    """Push a JSON event to the browser (no-op outside ComfyUI)."""
    server = prompt_server()
    if server is not None:
        server.send_sync(event, data)


def model_folder_files(folder: str) -> list[str]:
    """File names ComfyUI knows in a model folder (``loras``, ``diffusion_models``...), [] outside it."""
    try:
        import folder_paths
    except ImportError:
        return []
    try:
        return sorted(folder_paths.get_filename_list(folder))
    except KeyError:
        return []


def model_folder_path(folder: str, name: str) -> str:
    """Full path of a file in a ComfyUI model folder; outside ComfyUI the name is taken as a path."""
    try:
        import folder_paths
    except ImportError:
        return name
    return folder_paths.get_full_path_or_raise(folder, name)


def blocked_output() -> Any | None:
    """An output that silently stops the nodes wired to it (so Save Image skips an empty result).

    Inside ComfyUI this is an ExecutionBlocker; outside it, None.
    """
    try:
        from comfy_execution.graph_utils import ExecutionBlocker
    except ImportError:
        return None
    return ExecutionBlocker(None)


def model_folder_dirs(folder: str) -> list[str]:
    """The directories ComfyUI searches for a model folder (e.g. ``diffusers``), [] outside it."""
    try:
        import folder_paths
    except ImportError:
        return []
    try:
        return list(folder_paths.get_folder_paths(folder))
    except KeyError:
        return []


def free_comfy_memory() -> None:
    """Unload ComfyUI's own models before a big diffusers model loads, so both never share the GPU."""
    try:
        import comfy.model_management as model_management
    except ImportError:
        return
    model_management.unload_all_models()
    model_management.soft_empty_cache()


def is_interrupt(exc: BaseException) -> bool:
    """True for ComfyUI's cancel exception (raised from progress updates), without importing ComfyUI."""
    return type(exc).__name__ == "InterruptProcessingException"
