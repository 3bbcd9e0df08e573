"""Node registry: every public module here contributes NODE_CLASS_MAPPINGS.

Modules are discovered, so a stage adds its node file and nothing else. Node modules import no
optional dependency at module level: a node whose library is missing (face_recognition for the
identity filter, say) still registers, says what is missing in its description (see
core/data/availability.py) and raises the install line when it runs, so a template that uses it
shows that line instead of ComfyUI's "node does not exist". Should a module fail at import anyway,
it is left out with one logged warning (and the install line when the missing module is a known
optional dependency) or its traceback; the rest of the pack loads: one broken feature must never
take every node down.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

from ..core.data.availability import DEPENDENCIES, install_line

LOG = logging.getLogger("flenwheel")



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
            top = missing.split(".")[0]
            hint = install_line(top) if top in DEPENDENCIES else f"{sys.executable} -m pip install {top}"
            LOG.warning("FLENwheel: %s nodes disabled, %s is not installed (%s)", info.name, missing, hint)
            continue
        except Exception:
            LOG.exception("FLENwheel: %s nodes failed to load", info.name)
            continue
        classes.update(module.NODE_CLASS_MAPPINGS)
        names.update(module.NODE_DISPLAY_NAME_MAPPINGS)
    return classes, names
