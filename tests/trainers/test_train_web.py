"""The Training sidebar tab in a real (headless) Chromium, fed the events a training node pushes.

ComfyUI's ``app``/``api`` modules are replaced by small stubs served next to the pack's web folder,
as ComfyUI serves it under /extensions/<pack>/.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
CHROMIUM = Path("/usr/bin/chromium")
STUB_APP = """
window.__tabs = [];
export const app = {
  registerExtension(extension) { extension.setup?.(); },
  extensionManager: { registerSidebarTab(tab) { window.__tabs.push(tab); } },
};
"""
STUB_API = """
class Api extends EventTarget {}
export const api = new Api();
window.__api = api;
"""
PAGE = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<div id="sidebar" style="width:400px;height:800px"></div>
<script type="module">import "/extensions/flenwheel/training_tab.js";</script></body></html>"""


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from aiohttp import web

    async def stub(request):
        body = {"/scripts/app.js": STUB_APP, "/scripts/api.js": STUB_API, "/": PAGE}[request.path]
        return web.Response(text=body, content_type="text/html" if request.path == "/" else "text/javascript")

    async def review_api(request):
        if request.path.endswith("/projects"):
            return web.json_response({"projects": [{"key": "k1", "name": "Ada"}]})
        return web.json_response(FLYWHEEL)

    app = web.Application()
    app.router.add_get("/api/flenwheel/review/projects", review_api)
    app.router.add_get("/api/flenwheel/review/{key}/flywheel", review_api)
    app.router.add_get("/", stub)
    app.router.add_get("/scripts/{name}", stub)
    app.router.add_static("/extensions/flenwheel/", WEB)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 420, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(f"http://127.0.0.1:{port}/")
        tab.wait_for_function("() => window.__tabs.length === 1")
        yield tab
        assert not errors, errors
        browser.close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


FLYWHEEL = {"project": "Ada", "target": 0.8, "auto_review": True,
            "stopped": {"reason": "max_turns reached (2)", "after_turn": 2},
            "turns": [{"turn": 1, "char_lora": "char_v1", "finished": True, "editor": "ours:v1", "verified": 2,
                       "unverified": 7, "cells": 23, "rate": 0.087, "gain": None, "correction_rate": 0.18,
                       "images": {"pristine": 26}},
                      {"turn": 2, "char_lora": "char_v2", "finished": True, "editor": "ours:v1", "verified": 5,
                       "unverified": 4, "cells": 23, "rate": 0.217, "gain": 0.13, "correction_rate": 0.1,
                       "images": {"pristine": 20}}]}


def test_the_flywheel_panel_shows_each_turns_figures(page):
    page.evaluate("() => window.__tabs[0].render(document.getElementById('sidebar'))")
    page.wait_for_selector(".fw-flywheel-project")
    text = page.inner_text(".fw-flywheel")
    assert "Ada (auto-review: demo only, not a human)" in text
    assert "5/23 (22%)" in text and "+13 pts" in text and "18%" in text
    assert "stopped: max_turns reached (2)" in page.inner_text(".fw-flywheel-stop")


def _send(page, **detail):
    page.evaluate("(d) => window.__api.dispatchEvent(new CustomEvent('flenwheel.train', {detail: d}))", detail)


def test_training_tab_follows_a_run(page):
    assert page.evaluate("() => window.__tabs[0].id") == "flenwheel-training"
    page.evaluate("() => window.__tabs[0].render(document.getElementById('sidebar'))")
    assert "No training yet" in page.inner_text("#sidebar")
    out = "/p/models/flux_lora/char_v1"
    _send(page, kind="flux", output=out, event="start", step=0, total=100)
    for step in range(1, 41):
        _send(page, kind="flux", output=out, event="step", step=step, total=100, loss=1.0 / step, lr=1e-4,
              it_s=2.0, eta_s=(100 - step) / 2.0)
    _send(page, kind="flux", output=out, event="step", step=40, total=100, loss=0.5, it_s=2.0, eta_s=30.0)
    _send(page, kind="flux", output=out, event="checkpoint", step=40, path=out + "/checkpoints/step_000040")
    page.wait_for_function("() => document.querySelector('.fw-train-facts')?.textContent.includes('saved at 40')")
    facts = page.inner_text(".fw-train-facts")
    assert "loss 0.5000" in facts and "2.00 it/s" in facts and "ETA 30s" in facts and "saved at 40" in facts
    assert "width: 40%" in page.get_attribute(".fw-train-bar", "style")
    points = page.get_attribute(".fw-train-raw", "points").split()
    assert len(points) == 40  # step 40 reported twice (a resume), drawn once
    assert page.locator(".fw-train-avg").count() == 1

    _send(page, kind="flux", output=out, event="done", status="stopped", step=40, total=100,
          lora_path=out + "/checkpoints/step_000040/lora.safetensors")
    _send(page, kind="qwen-edit", output="/p/models/qwen_lora/v1", event="start", step=0, total=10)
    _send(page, kind="qwen-edit", output="/p/models/qwen_lora/v1", event="error", message="out of memory at step 1")
    page.wait_for_function(
        "() => document.querySelector('.fw-train-error') && document.querySelector('.fw-train-lora')")
    statuses = page.eval_on_selector_all(".fw-train-run", "cards => cards.map(c => c.dataset.status)")
    assert statuses == ["error", "stopped"]  # newest run first
    assert page.inner_text(".fw-train-error") == "out of memory at step 1"
    assert page.inner_text(".fw-train-lora").endswith("step_000040/lora.safetensors")
