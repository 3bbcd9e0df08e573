"""The read-only flywheel route of the review API: ``GET /flenwheel/review/{project}/flywheel``.

It serves the per-turn figures of ``reports/flywheel.json`` to the sidebar (the Flywheel panel of
the Training tab), the project addressed by its opaque key like every other review route. It only
reads that one file inside the project; a project with no turn yet answers an empty list.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..data.dataset import DatasetVersion
from ..data.project import Project
from ..data.records import ImageRecord
from ..editor.fix_routes import review_extensions as editor_extensions
from ..review.api import ReviewExtension, Route
from ..review.projects import ProjectRegistry
from .state import FlywheelState, flywheel_path


def turn_figures(turn: dict[str, Any]) -> dict[str, Any]:
    """What the sidebar shows of one turn."""
    first = turn.get("first_try") or {}
    return {"turn": turn["turn"], "char_lora": turn.get("char_lora"), "finished": bool(turn.get("finished")),
            "editor": "+".join(turn["editor"].get("chosen") or []) or "base", "why": turn["editor"].get("why"),
            "verified": first.get("verified"), "unverified": first.get("unverified"), "cells": first.get("cells"),
            "rate": first.get("rate"), "gain": turn.get("gain"), "correction_rate": turn.get("correction_rate"),
            "images": turn.get("images", {}), "stop_reason": turn.get("stop_reason")}


def flywheel_json(project: Project) -> dict[str, Any]:
    if not flywheel_path(project).is_file():
        return {"project": project.config.name, "turns": [], "target": None, "stopped": None, "auto_review": False}
    data = FlywheelState.load(project).data
    return {"project": data.get("project"), "target": data.get("target"), "stopped": data.get("stopped"),
            "auto_review": data.get("auto_review"), "turns": [turn_figures(t) for t in data["turns"]]}


class FlywheelRoutes:
    """The flywheel figures as a review extension (no item fields)."""

    def routes(self, registry: ProjectRegistry) -> list[Route]:
        async def flywheel(request: web.Request) -> web.Response:
            project = registry.get(request.match_info["project"])
            return web.json_response(await asyncio.to_thread(flywheel_json, project))

        return [("GET", "/{project}/flywheel", flywheel)]

    def item_fields(self, project: Project, dataset: DatasetVersion,
                    records: list[ImageRecord]) -> dict[str, dict[str, Any]]:
        return {}


def review_extensions() -> list[ReviewExtension]:
    """Every extension of the review API: the editor's corrected targets and the flywheel figures."""
    return [*editor_extensions(), FlywheelRoutes()]
