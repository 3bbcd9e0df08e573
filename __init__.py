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
        _mount_routes()
    return _registry


def _mount_routes() -> None:
    """Serve the review page's API from ComfyUI; a failure here must never cost the nodes."""
    import logging

    try:
        from .nodes._review_routes import mount_review_routes

        mount_review_routes()
    except Exception:
        logging.getLogger("flenwheel").exception("FLENwheel: the review routes could not be mounted")


def __getattr__(name: str) -> Any:
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        return _register()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
