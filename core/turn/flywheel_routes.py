"""The read-only flywheel routes of the review API: ``GET /flenwheel/review/{project}/flywheel`` and the report.

The first serves the per-turn figures of ``reports/flywheel.json`` to the sidebar (the Flywheel panel
of the Training tab), the project addressed by its opaque key like every other review route; a
project with no turn yet answers an empty list. ``.../flywheel/flywheel.html`` and its chart
``.../flywheel/flywheel.png`` serve the report ``flenwheel run`` writes beside it, which the panel
links to. Only those fixed files inside the project's ``reports/`` are read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from ..data.dataset import DatasetVersion
from ..data.project import Project
from ..data.records import ImageRecord
from ..editor.fix_routes import review_extensions as editor_extensions
from ..review.api import ReviewExtension, Route
from ..review.projects import ProjectRegistry
from ..training.run_history import project_runs
from .flywheel_report import HTML_FILE, PNG_FILE
from .state import FlywheelState, flywheel_path

REPORT_FILES = (HTML_FILE, PNG_FILE)


def turn_figures(turn: dict[str, Any]) -> dict[str, Any]:
    """What the sidebar shows of one turn."""
    first = turn.get("first_try") or {}
    return {"turn": turn["turn"], "char_lora": turn.get("char_lora"), "finished": bool(turn.get("finished")),
            "editor": "+".join(turn["editor"].get("chosen") or []) or "base", "why": turn["editor"].get("why"),
            "verified": first.get("verified"), "unverified": first.get("unverified"), "cells": first.get("cells"),
            "rate": first.get("rate"), "gain": turn.get("gain"), "correction_rate": turn.get("correction_rate"),
            "images": turn.get("images", {}), "stop_reason": turn.get("stop_reason")}


def report_file(project: Project, name: str) -> Path | None:
    """The report page or its chart inside the project's reports/ folder, or None (any other name, a
    missing file, or a link leading out of the project)."""
    if name not in REPORT_FILES:
        return None
    path = flywheel_path(project).parent / name
    root = project.root.resolve()
    return path if path.is_file() and path.resolve().is_relative_to(root) else None


def flywheel_json(project: Project) -> dict[str, Any]:
    report = report_file(project, HTML_FILE) is not None
    if not flywheel_path(project).is_file():
        return {"project": project.config.name, "turns": [], "target": None, "stopped": None, "auto_review": False,
                "report": report}
    data = FlywheelState.load(project).data
    return {"project": data.get("project"), "target": data.get("target"), "stopped": data.get("stopped"),
            "auto_review": data.get("auto_review"), "turns": [turn_figures(t) for t in data["turns"]],
            "report": report}


class FlywheelRoutes:
    """The flywheel figures and report as a review extension (no item fields)."""

    def routes(self, registry: ProjectRegistry) -> list[Route]:
        async def flywheel(request: web.Request) -> web.Response:
            project = registry.get(request.match_info["project"])
            return web.json_response(await asyncio.to_thread(flywheel_json, project))

        async def report(request: web.Request) -> web.StreamResponse:
            project = registry.get(request.match_info["project"])
            path = await asyncio.to_thread(report_file, project, request.match_info["file"])
            if path is None:
                raise web.HTTPNotFound(text="no flywheel report yet: run a whole turn (flenwheel run) first")
            return web.FileResponse(path, headers={"Cache-Control": "no-store"})

        return [("GET", "/{project}/flywheel", flywheel), ("GET", "/{project}/flywheel/{file}", report)]

    def item_fields(self, project: Project, dataset: DatasetVersion,
                    records: list[ImageRecord]) -> dict[str, dict[str, Any]]:
        return {}



class TrainingRoutes:
    """The runs on disk as a review extension (no item fields)."""

    def routes(self, registry: ProjectRegistry) -> list[Route]:
        async def training(request: web.Request) -> web.Response:
            project = registry.get(request.match_info["project"])
            return web.json_response({"runs": await asyncio.to_thread(project_runs, project)})

        return [("GET", "/{project}/training", training)]

    def item_fields(self, project: Project, dataset: DatasetVersion,
                    records: list[ImageRecord]) -> dict[str, dict[str, Any]]:
        return {}

def review_extensions() -> list[ReviewExtension]:
    """Every extension of the review API: the editor's corrected targets, the flywheel figures and report,
    and the training runs on disk."""
    return [*editor_extensions(), FlywheelRoutes(), TrainingRoutes()]
