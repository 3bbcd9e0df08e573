"""The review API inside ComfyUI: mounted once on PromptServer, over this session's projects.

The sidebar may show the projects that FLENwheel nodes opened in this ComfyUI session and the
project folders in the allowed places (``_places``: ComfyUI's output/flenwheel and the roots
the user allowed); a request names one by its opaque key, never by
a path (see ``core/review/projects.py``). The routes answer only the Host names ComfyUI's
``--listen`` address allows (the same DNS-rebinding rule as ``flenwheel review serve``), and
placement that a killed ComfyUI left undone is finished when the routes are mounted (for the
projects in the output folder) and when a Project node opens a project.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from ..core.data.dataset import DatasetVersion
from ..core.data.project import Project
from ..core.review.hosts import allowed_for_listen
from ..core.review.projects import ProjectRegistry
from ._comfy import listen_address, prompt_server
from ._places import allowed_roots

LOG = logging.getLogger("flenwheel")

_state: dict[str, object] = {}


def _output_folders() -> list[Path]:
    """The folders whose projects the sidebar lists: the allowed places (``_places``), none outside ComfyUI."""
    return list(allowed_roots() or ())


def registry() -> ProjectRegistry:
    """The session's registry (created on first use)."""
    if "registry" not in _state:
        _state["registry"] = ProjectRegistry(search_roots=_output_folders)
    return _state["registry"]  # type: ignore[return-value]


def remember_project(project: Project) -> str:
    """Let the review page show ``project``; returns the key events and the page use for it."""
    key = registry().add(project)
    _finish_pending([project])
    return key


def mount_review_routes() -> bool:
    """Add the review routes to PromptServer (once); False outside ComfyUI or when already mounted."""
    server = prompt_server()
    if server is None or _state.get("api"):
        return False
    from ..core.review.api import ReviewAPI
    from ..core.turn.flywheel_routes import review_extensions

    allowed = allowed_for_listen(listen_address())
    api = ReviewAPI(registry(), extensions=review_extensions(), allowed_hosts=lambda: allowed)
    api.add_routes(server.routes)
    _state["api"] = api
    _finish_pending(None)
    return True


def _finish_pending(projects: Sequence[Project] | None) -> None:
    """Finish placement a kill left undone, in the background (None: every project the registry finds)."""
    api = _state.get("api")
    if not api:
        return

    def run() -> None:
        from ..core.review.placement import finish_pending

        finish_pending(projects if projects is not None else registry().projects(), LOG.warning)

    thread = threading.Thread(target=run, name="flenwheel-finish-placement", daemon=True)
    _state["finishing"] = thread
    thread.start()


def warm_thumbnails(project: Project, dataset: DatasetVersion) -> None:
    """Start making the thumbnails a waiting gate's reviewer is about to ask for."""
    api = _state.get("api")
    if api:
        api.warm(project, dataset)
