"""The review API inside ComfyUI: mounted once on PromptServer, over this session's projects.

The sidebar may show the projects that FLENwheel nodes opened in this ComfyUI session and the
project folders under ComfyUI's output folder; a request names one by its opaque key, never by
a path (see ``core/review/projects.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.data.dataset import DatasetVersion
from ..core.data.project import Project
from ..core.review.projects import ProjectRegistry
from ._comfy import prompt_server

LOG = logging.getLogger("flenwheel")

_state: dict[str, object] = {}


def _output_folders() -> list[Path]:
    try:
        import folder_paths
    except ImportError:
        return []
    return [Path(folder_paths.get_output_directory())]


def registry() -> ProjectRegistry:
    """The session's registry (created on first use)."""
    if "registry" not in _state:
        _state["registry"] = ProjectRegistry(search_roots=_output_folders)
    return _state["registry"]  # type: ignore[return-value]


def remember_project(project: Project) -> str:
    """Let the review page show ``project``; returns the key events and the page use for it."""
    return registry().add(project)


def mount_review_routes() -> bool:
    """Add the review routes to PromptServer (once); False outside ComfyUI or when already mounted."""
    server = prompt_server()
    if server is None or _state.get("api"):
        return False
    from ..core.review.api import ReviewAPI
    from ..core.turn.flywheel_routes import review_extensions

    api = ReviewAPI(registry(), extensions=review_extensions())
    api.add_routes(server.routes)
    _state["api"] = api
    return True


def warm_thumbnails(project: Project, dataset: DatasetVersion) -> None:
    """Start making the thumbnails a waiting gate's reviewer is about to ask for."""
    api = _state.get("api")
    if api:
        api.warm(project, dataset)
