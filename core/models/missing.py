"""The message for a model whose files are not there: which model, where it was looked for, the fix.

diffusers ends such errors with "Please check out the root cause in the stacktrace above", but a
ComfyUI user or a CLI user sees no stack trace, only that line. FLENwheel says instead which
model it wanted, where it looked (the Hugging Face hub cache, the ComfyUI model folders, the path
given), and what to do: download it while online, or point at a complete local folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..data.errors import ModelLoadError

_DIFFUSERS_TAIL = re.compile(r"\s*(and an error occurred while trying to fetch metadata from the Hub\.)?\s*"
                             r"Please check out the root cause in the stacktrace above\.?", re.I)
COMFY_FOLDERS = "diffusion_models (unet), text_encoders (clip), vae"


def hub_cache() -> Path:
    """The folder the Hugging Face libraries read downloaded models from (HF_HUB_CACHE / HF_HOME)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def reason_of(exc: BaseException) -> str:
    """The library's own words, without the pointer to a stack trace nobody is shown."""
    return _DIFFUSERS_TAIL.sub("", str(exc)).strip().rstrip(".:;") or type(exc).__name__


def missing_model_error(what: str, source: str, exc: BaseException, is_path: bool) -> ModelLoadError:
    """A ``ModelLoadError`` for ``what`` (e.g. "the flux model") that could not be read from ``source``."""
    reason = reason_of(exc)
    if is_path:
        return ModelLoadError(
            f"cannot load {what} from the folder {source} (the path given): {reason}. Looked only there. Fix: "
            "finish copying or downloading it (a diffusers folder has model_index.json and one folder per "
            "component), or give a hub id such as black-forest-labs/FLUX.1-dev while online"
        )
    network = ("offline mode is on (HF_HUB_OFFLINE=1), so nothing is downloaded" if _offline()
               else "it could not be downloaded")
    return ModelLoadError(
        f"cannot load {what} {source}: it is not (completely) in the Hugging Face hub cache {hub_cache()} and "
        f"{network}. Looked in: the hub cache {hub_cache()}; the ComfyUI model folders ({COMFY_FOLDERS}) are "
        f"only read for single files picked in the loader; no local folder was given. Fix: download it while "
        f"online (`hf download {source}`; gated models need `hf auth login` and their licence accepted on "
        "huggingface.co), or pass a local diffusers folder instead of the hub id. "
        f"The library said: {reason}"
    )
