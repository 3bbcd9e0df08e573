"""Giving memory back between stages: one model leaves before the next one loads."""

from __future__ import annotations

import gc


def free_memory() -> None:
    """Collect dropped models and return the GPU's cached blocks, so the next load finds them free."""
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
