"""``flenwheel review serve``: the review page and its API without ComfyUI.

The app serves the same files ComfyUI serves from ``web/review/`` and mounts the same
``ReviewAPI`` as the ComfyUI sidebar, for exactly one project. It binds to 127.0.0.1 unless told
otherwise, and while it listens on loopback it answers only requests addressed to a loopback
name, so a web page cannot reach it through DNS rebinding. Placement a kill cut short is finished
when it starts (before it answers), thumbnails of every reviewable dataset are made in the
background from the start, and placement still waiting when the server stops is done before it
exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

from aiohttp import web

from ..data.errors import FlenwheelError
from ..data.project import Project
from .api import PLACE_DELAY_S, ReviewAPI, ReviewExtension
from .hosts import allowed_hosts, check_host
from .placement import finish_pending
from .projects import ProjectRegistry
from .stages import REVIEW_STAGES

LOG = logging.getLogger("flenwheel.review")

PAGE_DIR = Path(__file__).resolve().parents[2] / "web" / "review"
DEFAULT_PORT = 8189
#: Longer paths are refused (400) before routing: no page or API path comes near it, and the
#: static route would otherwise fail on the file system's name limit with a 500.
MAX_PATH = 2048


def host_guard(allowed: set[str] | None) -> Callable:
    """Middleware applying the Host rule to the page's own files too (the API checks it per route)."""

    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        check_host(request, allowed)
        if len(request.raw_path) > MAX_PATH:
            raise web.HTTPBadRequest(text=f"the path is longer than {MAX_PATH} characters")
        return await handler(request)

    return guard


def create_app(project: Project, host: str = "127.0.0.1", place_delay: float = PLACE_DELAY_S,
               extensions: Sequence[ReviewExtension] = ()) -> web.Application:
    """The standalone review app for one project."""
    allowed = allowed_hosts(host)
    api = ReviewAPI(ProjectRegistry([project]), place_delay=place_delay, extensions=extensions,
                    allowed_hosts=lambda: allowed)
    app = web.Application(middlewares=[host_guard(allowed)])
    routes = web.RouteTableDef()
    api.add_routes(routes)
    app.add_routes(routes)

    async def index(request: web.Request) -> web.Response:
        query = f"?{request.query_string}" if request.query_string else ""
        raise web.HTTPFound(f"/review/index.html{query}")

    app.router.add_get("/", index)
    app.router.add_static("/review/", PAGE_DIR)

    async def finish_placement(app: web.Application) -> None:
        await api.placement.flush()

    async def place_pending(app: web.Application) -> None:
        await asyncio.to_thread(finish_pending, [project], LOG.warning)

    async def warm_thumbnails(app: web.Application) -> None:
        await asyncio.to_thread(_warm_all, api, project)

    app.on_startup.append(place_pending)
    app.on_startup.append(warm_thumbnails)
    app.on_shutdown.append(finish_placement)
    return app


def _warm_all(api: ReviewAPI, project: Project) -> None:
    """Thumbnails of every reviewable dataset, newest first, so the page rarely waits for one."""
    for spec in REVIEW_STAGES.values():
        for version in reversed(project.versions(spec.dataset_stage)):
            try:
                api.warm(project, project.dataset(spec.dataset_stage, version))
            except FlenwheelError as exc:
                LOG.info("FLENwheel review: no thumbnails for %s %s: %s", spec.dataset_stage, version, exc)


def serve(project: Project, host: str = "127.0.0.1", port: int = DEFAULT_PORT, open_browser: bool = False,
          log: Callable[[str], None] = print, extensions: Sequence[ReviewExtension] = ()) -> None:
    """Run the review server until Ctrl+C; the address is printed only once the server listens."""
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}/"
    runner = web.AppRunner(create_app(project, host, extensions=extensions), access_log=None)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(runner.setup())
        _listen(loop, runner, host, port)
        if allowed_hosts(host) is None or not _is_loopback(host):
            log(f"warning: serving on {host}: anyone who can reach this machine can see and label the images")
        log(f"reviewing {project.config.name} ({project.root}) at {url}  (Ctrl+C to stop)")
        if open_browser:
            import webbrowser

            webbrowser.open(url)
        with contextlib.suppress(NotImplementedError):  # SIGTERM stops as cleanly as Ctrl+C
            loop.add_signal_handler(signal.SIGTERM, loop.stop)
        with contextlib.suppress(KeyboardInterrupt):
            loop.run_forever()
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.close()


def _listen(loop: asyncio.AbstractEventLoop, runner: web.AppRunner, host: str, port: int) -> None:
    """Start listening, or say in one line which port is taken and how to pick another."""
    try:
        loop.run_until_complete(web.TCPSite(runner, host, port).start())
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror or exc})"
        raise FlenwheelError(f"port {port} on {host} {reason}; choose another with --port") from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


@contextlib.contextmanager
def serving(project: Project, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
            extensions: Sequence[ReviewExtension] = ()) -> Iterator[str]:
    """Serve the review page from a background thread for the duration of the block; yields its URL.

    ``flenwheel run`` uses this while it waits for a person's decisions, so the same page a
    reviewer knows from ``flenwheel review serve`` is there without a second command.
    """
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(project, host, extensions=extensions), access_log=None)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, host, port).start())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="flenwheel-review-server", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise FlenwheelError(f"cannot serve the review page on {host}:{port}: {failure[0]}; "
                             "choose another port (review.port)")
    try:
        yield f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
