"""How a headless run uses the CPU and the console: torch's thread count and the model libraries' progress output.

``flenwheel demo`` runs tiny models with one torch thread (several times faster than torch's default
on a busy small CPU, where threads fight over two cores for tensors of a few kilobytes) and without
diffusers' and transformers' progress bars and warnings (the tiny byte-level tokenizers trigger
warnings real ones do not). ``flenwheel run --threads 1 --no-progress`` does the same for any
config, so the demo's config runs as fast under ``run`` as in the demo.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_model_libraries(bars: bool = True, warnings: bool = True) -> Iterator[None]:
    """Hide diffusers' and transformers' progress bars (``bars``) and warnings (``warnings``: only errors
    are shown) while inside; both come back afterwards."""
    if not (bars or warnings):
        yield
        return
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (diffusers_logging, transformers_logging)
    levels = [library.get_verbosity() for library in libraries]
    for library in libraries:
        if warnings:
            library.set_verbosity_error()
        if bars:
            library.disable_progress_bar()
    try:
        yield
    finally:
        for library, level in zip(libraries, levels, strict=True):
            library.set_verbosity(level)
            if bars:
                library.enable_progress_bar()


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch CPU threads (None: leave torch's own choice), restored afterwards."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
