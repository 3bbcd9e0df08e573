"""How fast the review page opens on a large dataset (the issue's target: 1000 images in < 1 s).

Builds a throwaway project with N enriched images (default 1000 at 768 px, with sources), serves
it with the same app as ``flenwheel review serve``, and opens the page in headless Debian
Chromium through Playwright. "Open" is the time from navigation start until every thumbnail of
the first screenful has loaded (the page marks it as ``fw-first-screen``). Images written through
the dataset API get their thumbnail with them, so the normal case is "thumbnails present" (fresh
browser profile, so nothing comes from the browser cache). The cold case wipes the project's
thumbnail cache first (images copied in by hand, a cleared cache): the first screenful is then
rendered on demand, before everything else.

    python benchmarks/review_page_open.py [--count 1000] [--size 768] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from aiohttp import web
from PIL import Image

from flenwheel.core.data.project import Project
from flenwheel.core.review.server import create_app

CHROMIUM = "/usr/bin/chromium"


def picture(seed: int, size: int) -> Image.Image:
    """A blocky random picture: unique per seed, quick to encode, photo-sized."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    return Image.fromarray(blocks, "RGB").resize((size, size), Image.Resampling.BILINEAR)


def build_project(root: Path, count: int, size: int) -> Project:
    project = Project.init(root, name="Benchmark")
    sources = project.create_dataset("source")
    parents = [sources.add_image(picture(100_000 + i, size), stem=f"source_{i}") for i in range(10)]
    dataset = project.create_dataset("enriched")
    with dataset.edit() as edit:
        for i in range(count):
            edit.add_image(picture(i, size), stem=f"edit_{i:05d}", parents=[parents[i % 10].id],
                           prompt=f"edit prompt {i}", scores={"identity": {"similarity": 0.6, "match": True}})
    return project


class Server:
    """The standalone review app on a free loopback port, in a background thread."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(create_app(self.project))
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Server:
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


FIRST_SCREEN = "performance.getEntriesByName('fw-first-screen')[0].startTime"


def open_page(browser, url: str) -> tuple[float, float]:
    """Milliseconds from navigation start to the first screenful of thumbnails loaded: in a
    fresh browser profile, then after a reload (the browser cache now holds the thumbnails)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(".fw-review[data-ready='1']", timeout=60_000)
    opened = page.evaluate(FIRST_SCREEN)
    if page.locator(".fw-tile").count() == 0:
        raise SystemExit("the page showed no tiles")
    page.reload()
    page.wait_for_selector(".fw-review[data-ready='1']", timeout=60_000)
    reloaded = page.evaluate(FIRST_SCREEN)
    context.close()
    return opened, reloaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", type=Path,
                        help="Build the project here and keep it (reused when it exists; its "
                             "thumbnails are cleared for the cold case).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = args.project or Path(tmp) / "project"
        if (root / "flenwheel.json").exists():
            project = Project.open(root)
        else:
            start = time.perf_counter()
            project = build_project(root, args.count, args.size)
            seconds = time.perf_counter() - start
            print(f"built {args.count} enriched images of {args.size} px in {seconds:.1f} s")
        shutil.rmtree(project.cache_dir / "thumbs", ignore_errors=True)
        cold, warm = measure(project, args.runs)
    fresh, reloads = [run[0] for run in warm], [run[1] for run in warm]
    print(f"page open, cold (thumbnail cache wiped, first screenful rendered on demand): {cold[0]:.0f} ms")
    print(f"page open, thumbnails present, fresh browser profile, {args.runs} runs: "
          f"median {statistics.median(fresh):.0f} ms, max {max(fresh):.0f} ms")
    print(f"page reload (browser cache warm), {args.runs} runs: median {statistics.median(reloads):.0f} ms, "
          f"max {max(reloads):.0f} ms")


def measure(project: Project, runs: int) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    from playwright.sync_api import sync_playwright

    with Server(project) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        cold = open_page(browser, server.url)
        time.sleep(1.0)
        warm = [open_page(browser, server.url) for _ in range(runs)]
        browser.close()
    return cold, warm


if __name__ == "__main__":
    main()
