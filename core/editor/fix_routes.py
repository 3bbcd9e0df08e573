"""The review page's corrected-target routes (step 2.1), plugged into the review API.

A corrected target for an edit reviewed as needs_correction is uploaded as the request body of
``POST .../fix?version=vN&id=ID``; it is decoded and checked like any image and stored under a
name taken from the record (``corrections/fixed/<edit name>.png``), never from the request. The
review API knows nothing of corrections: this extension adds the routes and the ``fix`` field of
each listed item.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from ..data.dataset import DatasetVersion
from ..data.project import Project
from ..data.records import ImageRecord
from ..review.api import MAX_UPLOAD, UPLOAD_TYPES, Route, read_limited, same_origin
from ..review.items import ForeignImageError, check_image_id, open_dataset, record_index
from ..review.projects import ProjectRegistry
from ..review.stages import clean_text
from .correction_targets import fix_path, fixes_by_record, store_fix


class FixRoutes:
    """Upload and show corrected targets of enriched edits."""

    def routes(self, registry: ProjectRegistry) -> list[Route]:
        async def upload_fix(request: web.Request) -> web.Response:
            """The body is the image itself; version and id come from the query and are checked."""
            if not same_origin(request):
                raise web.HTTPForbidden(text="cross-site requests are refused")
            if request.content_type not in UPLOAD_TYPES:
                raise web.HTTPUnsupportedMediaType(text=f"send the image as one of {', '.join(sorted(UPLOAD_TYPES))}")
            project = registry.get(request.match_info["project"])
            version, image_id = request.query.get("version", ""), check_image_id(request.query.get("id", ""))
            open_dataset(project, "enriched", version)
            data = await read_limited(request, MAX_UPLOAD)
            name = request.query.get("name") or "the picked image"
            stored = await asyncio.to_thread(store_fix, project, version, image_id, data, clean_text(name, "name"))
            return web.json_response({"fix": {"file": stored.relative, "w": stored.width, "h": stored.height},
                                      "note": stored.note, "replaced": stored.replaced})

        async def fix_image(request: web.Request) -> web.StreamResponse:
            project = registry.get(request.match_info["project"])
            image_id = check_image_id(request.match_info["image_id"])
            version = request.match_info["version"]

            def find() -> Path:
                dataset = open_dataset(project, "enriched", version)
                record_index(dataset).get(image_id)
                path = fix_path(project, version, image_id)
                if path is None or not path.resolve().is_relative_to(project.root.resolve()):
                    raise ForeignImageError(f"image {image_id[:16]} has no corrected target")
                return path

            return web.FileResponse(await asyncio.to_thread(find), headers={"Cache-Control": "no-store"})

        return [("POST", "/{project}/fix", upload_fix), ("GET", "/{project}/fix/{version}/{image_id}", fix_image)]

    def item_fields(self, project: Project, dataset: DatasetVersion,
                    records: list[ImageRecord]) -> dict[str, dict[str, Any]]:
        if dataset.stage != "enriched":
            return {}
        fixes = fixes_by_record(dataset, records)[0]
        return {record_id: {"fix": {"count": len(paths), "file": paths[0].name, "mtime": int(paths[0].stat().st_mtime)}}
                for record_id, paths in fixes.items() if paths}


def review_extensions() -> list[FixRoutes]:
    """What every review server adds to the review API (standalone and inside ComfyUI)."""
    return [FixRoutes()]
