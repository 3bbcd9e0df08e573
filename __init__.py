"""FLENwheel: a ComfyUI node pack and a Python package (``flenwheel``) with a CLI.

ComfyUI reads NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS and WEB_DIRECTORY from this module.
The node mappings are built on first access (PEP 562), so ``import flenwheel`` from the CLI or a
trainer subprocess stays fast and quiet, while ComfyUI, which reads them right after import, gets
every node whose dependencies are present. Inside ComfyUI the pack's HTTP routes are mounted at the
same moment.
"""

from __future__ import annotations

from typing import Any

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

_registry: dict[str, Any] = {}


def _register() -> dict[str, Any]:
    if not _registry:
        from .nodes import load_nodes

        classes, names = load_nodes()
        _registry.update(NODE_CLASS_MAPPINGS=classes, NODE_DISPLAY_NAME_MAPPINGS=names)
    return _registry


def __getattr__(name: str) -> Any:
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        return _register()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
