"""Fixtures for the review tests: projects with enriched or synthetic images ready to review."""

from __future__ import annotations

import asyncio
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

IDENTITY = {"distance": 0.41, "similarity": 0.59, "match": True, "reason": None}


def _picture(seed: int, size: int = 96) -> Image.Image:
    """A distinct little picture per seed (noise: unique pixels, so unique ids)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def picture():
    return _picture


@pytest.fixture
def enriched(project):
    """``project`` with 3 sources and an enriched v1 of ``count`` edits of them -> (project, records)."""

    def make(count: int = 12, size: int = 96):
        sources = project.create_dataset("source")
        parents = [sources.add_image(_picture(1000 + i, size), stem=f"source_{i}", angle="front",
                                     expression="neutral", caption=f"photo of {project.subject}")
                   for i in range(3)]
        dataset = project.create_dataset("enriched")
        records = []
        with dataset.edit() as edit:
            for i in range(count):
                records.append(edit.add_image(
                    _picture(i, size), stem=f"edit_{i:03d}", parents=[parents[i % 3].id],
                    prompt=f"change the background to scene {i}, keep the person identical",
                    scores={"identity": IDENTITY} if i % 2 == 0 else {},
                ))
        return project, records

    return make


@pytest.fixture
def synthetic(project):
    """``project`` with a synthetic v1 whose images carry model-card angle/expression tags."""

    def make(count: int = 8):
        from flenwheel.core.data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS

        dataset = project.create_dataset("synthetic")
        records = []
        with dataset.edit() as edit:
            for i in range(count):
                records.append(edit.add_image(
                    _picture(500 + i), stem=f"gen_{i:03d}", prompt=f"portrait of {project.subject}, {i}",
                    seed=i, angle=CARD_ANGLES[i % len(CARD_ANGLES)],
                    expression=CARD_EXPRESSIONS[i % len(CARD_EXPRESSIONS)],
                ))
        return project, records

    return make


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium():
    """A headless Debian Chromium driven by Playwright (no browser download); skipped, loudly, without it."""
    if not CHROMIUM.exists():
        reason = (f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
                  "to run the browser tests")
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def live_app():
    """Serve an aiohttp app on a free loopback port in a thread; yields a function app -> base URL."""
    from aiohttp import web

    started: list[tuple[asyncio.AbstractEventLoop, web.AppRunner, threading.Thread]] = []

    def serve(app: web.Application) -> str:
        ready = threading.Event()
        box: dict = {}

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            box.update(loop=loop, runner=runner, port=site._server.sockets[0].getsockname()[1])
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert ready.wait(20), "the test server did not start"
        started.append((box["loop"], box["runner"], thread))
        return f"http://127.0.0.1:{box['port']}"

    yield serve
    for loop, _, thread in started:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
