"""The review page's HTTP API: written once, mounted on ComfyUI's PromptServer and by ``review serve``.

All routes live under ``/flenwheel/review``. A project is addressed by an opaque key from a
``ProjectRegistry`` (the projects this server was started with, or that ComfyUI nodes opened,
or that sit in ComfyUI's output folder), never by a path from the request. Dataset stages,
versions and image ids in a request are validated, and a file is only ever served when a record
of that dataset names it and it resolves inside the project (see ``review_items``).

Decisions are written to the store before the response is sent; placement into folders runs a
moment later in the background (``PlacementQueue``), so labelling stays instant while the
folders follow. Blocking work (SQLite, files, thumbnails) runs in worker threads so ComfyUI's
event loop keeps serving its websocket.

Other rooms add routes and item fields through extensions (``ReviewExtension``): the editor
flywheel's corrected-target upload lives in ``core/editor/fix_routes.py``, so the review API
stays about review.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError
from ..data.images import IMAGE_MEDIA_TYPES
from ..data.project import Project
from ..data.records import ImageRecord
from ..data.thumbnails import ThumbnailWarmer, thumb_size, thumbnail
from .hosts import check_host
from .items import (
    ForeignImageError,
    SourceRef,
    check_image_id,
    find_source,
    open_dataset,
    record_file,
    record_index,
    source_lookup,
)
from .pick_order import pick_order
from .placement import PlacementReport, place
from .projects import ProjectRegistry
from .stages import AUTO_REVIEWER, REVIEW_STAGES, review_stage
from .store import Decision, ReviewStore
from .summary import summarize

LOG = logging.getLogger("flenwheel.review")

API_PREFIX = "/flenwheel/review"
MAX_UPLOAD = 64 * 1024 * 1024
#: The same image types a folder or the CLI takes (``IMAGE_MEDIA_TYPES``), so GIF is one rule everywhere.
UPLOAD_TYPES = frozenset(IMAGE_MEDIA_TYPES.values())
PLACE_DELAY_S = 1.5
#: The most pristine candidates a page may ask to have preselected (``?best=N``) for the person to confirm.
MAX_SUGGESTED = 1000
IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]


class ReviewExtension(Protocol):
    """Extra routes and per-item fields that another room plugs into the review API."""

    def routes(self, registry: ProjectRegistry) -> list[Route]: ...

    def item_fields(self, project: Project, dataset: DatasetVersion,
                    records: list[ImageRecord]) -> dict[str, dict[str, Any]]: ...


class PlacementQueue:
    """Runs placement for a dataset once decisions have paused for ``delay`` seconds."""

    def __init__(self, delay: float = PLACE_DELAY_S) -> None:
        self.delay = delay
        self._due: dict[tuple[str, str, str], float] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task] = {}
        self.errors: dict[tuple[str, str, str], str] = {}

    def poke(self, project: Project, stage: str, version: str) -> None:
        key = (str(project.root), stage, version)
        loop = asyncio.get_running_loop()
        self._due[key] = loop.time() + self.delay
        if key not in self._tasks:
            self._tasks[key] = loop.create_task(self._run(key, project, stage, version))

    def pending(self, project: Project, stage: str, version: str) -> bool:
        return (str(project.root), stage, version) in self._tasks

    async def flush(self) -> None:
        """Place everything still waiting now (on shutdown)."""
        for key in self._due:
            self._due[key] = 0.0
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _run(self, key: tuple[str, str, str], project: Project, stage: str, version: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            while key in self._due:
                while (wait := self._due[key] - loop.time()) > 0:
                    await asyncio.sleep(wait)
                del self._due[key]
                try:
                    await asyncio.to_thread(place, project, stage, version)
                    self.errors.pop(key, None)
                except Exception as exc:  # keep serving; the page shows the message
                    LOG.warning("FLENwheel review: placement of %s %s failed: %s", stage, version, exc)
                    self.errors[key] = str(exc)
        finally:
            self._tasks.pop(key, None)


class ReviewAPI:
    """Route handlers over a project registry; ``add_routes`` mounts them on any RouteTableDef."""

    def __init__(self, registry: ProjectRegistry, place_delay: float = PLACE_DELAY_S,
                 extensions: Sequence[ReviewExtension] = (),
                 allowed_hosts: Callable[[], set[str] | None] = lambda: None) -> None:
        """``allowed_hosts`` gives the Host names to answer (None: any), asked per request (see ``hosts``)."""
        self.registry = registry
        self.extensions = list(extensions)
        self.allowed_hosts = allowed_hosts
        self.placement = PlacementQueue(place_delay)
        self.warmer = ThumbnailWarmer()

    def add_routes(self, routes: web.RouteTableDef) -> None:
        table = [
            ("GET", "/projects", self.projects),
            ("GET", "/stages", self.stages),
            ("GET", "/{project}/datasets", self.datasets),
            ("GET", "/{project}/items", self.items),
            ("GET", "/{project}/summary", self.summary),
            ("GET", "/{project}/history", self.history),
            ("GET", "/{project}/thumb/{dataset}/{version}/{image_id}", self.thumb),
            ("GET", "/{project}/image/{dataset}/{version}/{image_id}", self.image),
            ("POST", "/{project}/decide", self.decide),
            ("POST", "/{project}/undo", self.undo),
            ("POST", "/{project}/place", self.place_now),
        ]
        table += [route for extension in self.extensions for route in extension.routes(self.registry)]
        for method, path, handler in table:
            routes.route(method, API_PREFIX + path)(_guarded(handler, self.allowed_hosts))

    def warm(self, project: Project, dataset: DatasetVersion) -> int:
        """Queue the dataset's missing thumbnails (a gate starting to wait, a server starting)."""
        records = record_index(dataset).records
        return self.warmer.warm(project.cache_dir, ((r.id, _locator(project, dataset, r.id)) for r in records))

    # Listing ------------------------------------------------------------------------------
    async def projects(self, request: web.Request) -> web.Response:
        return web.json_response({"projects": await asyncio.to_thread(self.registry.entries)})

    async def stages(self, request: web.Request) -> web.Response:
        return web.json_response({"stages": [stage.to_json() for stage in REVIEW_STAGES.values()]})

    async def datasets(self, request: web.Request) -> web.Response:
        project = self.registry.get(request.match_info["project"])

        def collect() -> list[dict[str, Any]]:
            found = []
            for spec in REVIEW_STAGES.values():
                for version in project.versions(spec.dataset_stage):
                    try:
                        summary = summarize(project, spec.name, version)
                    except FlenwheelError:
                        continue
                    found.append({"stage": spec.name, "version": version, "dataset": summary.dataset,
                                  "title": spec.title, "total": summary.total, "pending": summary.pending})
            return found

        found = await asyncio.to_thread(collect)
        return web.json_response({"project": self.registry.describe(project), "datasets": found})

    async def items(self, request: web.Request) -> web.Response:
        project, stage, version = self._scope(request)
        wanted = request.query.get("filter", "all")
        spec = review_stage(stage)
        if wanted not in ("all", "pending", "decided", *spec.label_names):
            raise FlenwheelError(f"unknown filter '{wanted}'; use all, pending, decided or a label")
        best_text = request.query.get("best", "0")
        if not best_text.isdigit() or int(best_text) > MAX_SUGGESTED:
            raise FlenwheelError(f"best must be a whole number from 0 to {MAX_SUGGESTED}, not '{best_text[:20]}'")
        best = int(best_text)

        def collect() -> dict[str, Any]:
            dataset = open_dataset(project, spec.dataset_stage, version)
            index = record_index(dataset)
            current = ReviewStore(project).current(stage, version)
            sources = source_lookup(project) if spec.dataset_stage in ("enriched", "reruns") else {}
            fields: dict[str, dict[str, Any]] = {}
            for extension in self.extensions:
                for record_id, extra in extension.item_fields(project, dataset, index.records).items():
                    fields.setdefault(record_id, {}).update(extra)
            if spec.name == "synthetic":
                order = pick_order(project, version, index.records, current, best)
                for ranked in order.ranked:
                    fields.setdefault(ranked.record_id, {})["gap"] = ranked.to_json()
            items = []
            for record in index.records:
                decision = current.get(record.id)
                label = decision.label if decision else None
                if wanted == "all" or (wanted == "pending" and label is None) or \
                        (wanted == "decided" and label is not None) or wanted == label:
                    items.append(_item(project, record, decision, sources) | fields.get(record.id, {}))
            items.sort(key=lambda item: item["gap"]["rank"] if "gap" in item else len(items) + 1)
            self.warm(project, dataset)
            return {"items": items, "summary": self._summary(project, stage, version)}

        return web.json_response(await asyncio.to_thread(collect))

    async def summary(self, request: web.Request) -> web.Response:
        project, stage, version = self._scope(request)
        return web.json_response(await asyncio.to_thread(self._summary, project, stage, version))

    async def history(self, request: web.Request) -> web.Response:
        project, stage, version = self._scope(request)
        image_id = request.query.get("id")
        if image_id is not None:
            check_image_id(image_id)
        rows = await asyncio.to_thread(ReviewStore(project).history, stage, version, image_id)
        return web.json_response({"history": [row.to_json() for row in rows]})

    # Files --------------------------------------------------------------------------------
    async def thumb(self, request: web.Request) -> web.StreamResponse:
        """Thumbnails are small: find, render if needed and read in one worker call (fewer hops)."""
        project, find, image_id = self._file(request)
        size = thumb_size(request.query.get("size"))

        def read() -> bytes:
            return thumbnail(project.cache_dir, image_id, find(), size).read_bytes()

        return web.Response(body=await asyncio.to_thread(read), content_type="image/jpeg", headers=IMMUTABLE)

    async def image(self, request: web.Request) -> web.StreamResponse:
        _, find, _ = self._file(request)
        return web.FileResponse(await asyncio.to_thread(find), headers=IMMUTABLE)

    # Decisions ----------------------------------------------------------------------------
    async def decide(self, request: web.Request) -> web.Response:
        project, body = await self._post(request)
        stage, version = _text(body, "stage"), _text(body, "version")
        decision = await asyncio.to_thread(
            ReviewStore(project).decide, _text(body, "id"), stage, version, _text(body, "label"),
            reason=_text(body, "reason", required=False), reviewer=_text(body, "reviewer", required=False),
            note=_text(body, "note", required=False),
        )
        self.placement.poke(project, stage, version)
        summary = await asyncio.to_thread(self._summary, project, stage, version)
        return web.json_response({"decision": decision.to_json(), "summary": summary})

    async def undo(self, request: web.Request) -> web.Response:
        project, body = await self._post(request)
        stage, version = _text(body, "stage"), _text(body, "version")
        store = ReviewStore(project)
        undone = await asyncio.to_thread(store.undo, stage, version, _text(body, "id", required=False),
                                         _text(body, "reviewer", required=False))
        current = None
        if undone is not None:
            self.placement.poke(project, stage, version)
            current = await asyncio.to_thread(store.current_for, stage, version, undone.image_id)
        summary = await asyncio.to_thread(self._summary, project, stage, version)
        return web.json_response({"undone": undone.to_json() if undone else None,
                                  "current": current.to_json() if current else None, "summary": summary})

    async def place_now(self, request: web.Request) -> web.Response:
        project, body = await self._post(request)
        stage, version = _text(body, "stage"), _text(body, "version")
        review_stage(stage)
        report: PlacementReport = await asyncio.to_thread(place, project, stage, version)
        return web.json_response({"report": vars(report) | {"text": report.describe()}})

    # Helpers ------------------------------------------------------------------------------
    def _scope(self, request: web.Request) -> tuple[Project, str, str]:
        project = self.registry.get(request.match_info["project"])
        stage, version = request.query.get("stage", ""), request.query.get("version", "")
        open_dataset(project, review_stage(stage).dataset_stage, version)
        return project, stage, version

    def _file(self, request: web.Request) -> tuple[Project, Callable[[], Path], str]:
        """The project, a function finding the requested image's file (to run in a worker), the id."""
        project = self.registry.get(request.match_info["project"])
        image_id = check_image_id(request.match_info["image_id"])
        stage, version = request.match_info["dataset"], request.match_info["version"]

        def find() -> Path:
            dataset = open_dataset(project, stage, version)
            return record_file(project, dataset, record_index(dataset).get(image_id))

        return project, find, image_id

    async def _post(self, request: web.Request) -> tuple[Project, dict[str, Any]]:
        """The JSON body of a same-origin request (no browser can send JSON cross-site without CORS)."""
        if not same_origin(request):
            raise web.HTTPForbidden(text="cross-site requests are refused")
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send the body as application/json")
        project = self.registry.get(request.match_info["project"])
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FlenwheelError("the body is not valid JSON") from None
        except RecursionError:
            raise FlenwheelError("the body nests too deeply; send a flat JSON object") from None
        if not isinstance(body, dict):
            raise FlenwheelError("the body must be a JSON object")
        return project, body

    def _summary(self, project: Project, stage: str, version: str) -> dict[str, Any]:
        data = summarize(project, stage, version).to_json()
        key = (str(project.root), stage, version)
        return data | {"placement": {"pending": self.placement.pending(project, stage, version),
                                     "error": self.placement.errors.get(key)}}


def same_origin(request: web.Request) -> bool:
    """False for a browser request from another site (Origin or Sec-Fetch-Site says so)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc.lower() == request.host.lower()


def _guarded(handler: Handler, allowed_hosts: Callable[[], set[str] | None]) -> Handler:
    """Apply the Host rule, and turn user-facing errors into JSON answers: foreign things 404, bad input 400."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        check_host(request, allowed_hosts())
        try:
            return await handler(request)
        except ForeignImageError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except FlenwheelError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    return run


def _text(body: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise FlenwheelError(f"'{key}' must be a {'non-empty ' if required else ''}string")
    return value


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes (the server's own upload limit may be lower).

    The chunks read so far are dropped before refusing: the exception's traceback keeps this frame
    alive until a garbage collection, and with it the 64 MiB already read.
    """
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            chunks.clear()
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    if not size:
        raise FlenwheelError("the upload is empty; pick an image file")
    return b"".join(chunks)


def _locator(project: Project, dataset: DatasetVersion, image_id: str) -> Callable[[], Path]:
    """Finds an image's current file later, through the same checks as a request."""
    return lambda: record_file(project, dataset, record_index(dataset).get(image_id))


def _item(project: Project, record: ImageRecord, decision: Decision | None,
          sources: dict[str, SourceRef]) -> dict[str, Any]:
    """What the page needs of one image: ids, text, scores, verdict (and who gave it), cell and source."""
    item: dict[str, Any] = {
        "id": record.id, "file": record.filename, "w": record.width, "h": record.height, "label": None,
    }
    extras = {"prompt": record.prompt or record.caption, "angle": record.angle,
              "expression": record.expression, "seed": record.seed}
    item.update({key: value for key, value in extras.items() if value is not None})
    identity = record.scores.get("identity") if isinstance(record.scores, dict) else None
    if isinstance(identity, dict):
        item["identity"] = {key: identity.get(key) for key in ("distance", "similarity", "match", "reason")}
    if decision is not None:
        item.update(label=decision.label, reason=decision.reason, reason_text=decision.reason_text,
                    note=decision.note, seq=decision.seq, reviewer=decision.reviewer, at=decision.at,
                    auto=decision.reviewer == AUTO_REVIEWER)
    source = find_source(project, record, sources) if sources else None
    if source is not None:
        item["source"] = {"dataset": "source", "version": source.version, "id": source.image_id}
    extra = record.model_extra or {}
    item.update({key: extra[key] for key in ("cell", "try", "pose") if extra.get(key) is not None})
    stage, _, version = str(extra.get("enriched_dataset") or "").partition("/")
    if extra.get("corrects") and stage == "enriched":
        item["corrects"] = {"dataset": "enriched", "version": version, "id": extra["corrects"]}
    return item
