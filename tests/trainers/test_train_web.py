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
STUB_API = STUB_API.replace("class Api extends EventTarget {}",
                            'class Api extends EventTarget { apiURL(path) { return "/api" + path; } }')
PAGE = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<div id="sidebar" style="width:400px;height:800px;overflow:auto"></div>
<script type="module">import "/extensions/flenwheel/sidebar_tabs.js";</script></body></html>"""
TRAINING = "window.__tabs.find((tab) => tab.id === 'flenwheel-training')"
#: Runs the stub's GET .../training lists for project k2 (a test fills it, the fixture empties it).
SAVED_RUNS: list[dict] = []
PROJECTS = [{"key": "k1", "name": "Ada", "folder": "output/flenwheel/ada"},
            {"key": "k2", "name": "Ada", "folder": "/home/me/ada_old"},
            {"key": "k3", "name": "Bo", "folder": "output/flenwheel/bo"}]


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
            return web.json_response({"projects": PROJECTS})
        if request.path.endswith("/training"):
            return web.json_response({"runs": SAVED_RUNS if request.match_info["key"] == "k2" else []})
        if request.match_info["key"] == "k1":
            return web.json_response(FLYWHEEL)
        return web.json_response({"project": "x", "turns": [], "report": False})

    app = web.Application()
    app.router.add_get("/api/flenwheel/review/projects", review_api)
    app.router.add_get("/api/flenwheel/review/{key}/flywheel", review_api)
    app.router.add_get("/api/flenwheel/review/{key}/training", review_api)
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
        tab.wait_for_function("() => window.__tabs.length === 2")
        yield tab
        SAVED_RUNS.clear()
        assert not errors, errors
        browser.close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


FLYWHEEL = {"project": "Ada", "target": 0.8, "auto_review": True, "report": True,
            "stopped": {"reason": "max_turns reached (2)", "after_turn": 2},
            "turns": [{"turn": 1, "char_lora": "char_v1", "finished": True, "editor": "ours:v1", "verified": 2,
                       "unverified": 7, "cells": 23, "rate": 0.087, "gain": None, "correction_rate": 0.18,
                       "images": {"pristine": 26}},
                      {"turn": 2, "char_lora": "char_v2", "finished": True, "editor": "ours:v1", "verified": 5,
                       "unverified": 4, "cells": 23, "rate": 0.217, "gain": 0.13, "correction_rate": 0.1,
                       "images": {"pristine": 20}}]}


def render(page, width=400):
    page.evaluate(f"() => {{ const s = document.getElementById('sidebar'); s.style.width = '{width}px';"
                  f" {TRAINING}.render(s); }}")


def test_the_tabs_register_in_one_order(page):
    assert page.evaluate("() => window.__tabs.map((tab) => tab.id)") == ["flenwheel-review", "flenwheel-training"]


def test_the_flywheel_panel_shows_each_turns_figures(page):
    render(page)
    page.wait_for_selector(".fw-flywheel-project")
    text = page.inner_text(".fw-flywheel")
    assert "auto-review: demo only, not a human" in text
    assert "5/23 verified" in text and "22%" in text and "+13 pts" in text and "18%" in text
    assert "stopped: max_turns reached (2)" in page.inner_text(".fw-flywheel-stop")
    # two projects are called Ada: the one shown says which folder it is; its report is one click away
    assert page.inner_text(".fw-flywheel-folder") == "output/flenwheel/ada"
    assert page.get_attribute(".fw-flywheel-report", "href") == "/api/flenwheel/review/k1/flywheel/flywheel.html"


@pytest.mark.parametrize("width", [250, 290])
def test_the_flywheel_table_fits_the_sidebar_whole(page, width):
    """Frontend 1.27 and 1.58 open the sidebar 253-290 px wide; two turns fit without scrolling."""
    render(page, width)
    page.wait_for_selector(".fw-flywheel-table")
    table = page.eval_on_selector(".fw-flywheel-table", "t => t.getBoundingClientRect().right")
    sidebar = page.eval_on_selector("#sidebar", "s => s.getBoundingClientRect().right")
    assert table <= sidebar, f"the table ends at {table} px, the {width} px sidebar at {sidebar}"
    assert page.eval_on_selector("#sidebar", "s => s.scrollWidth <= s.clientWidth")
    assert page.eval_on_selector(".fw-flywheel-scroll", "s => s.scrollWidth <= s.clientWidth")


def _send(page, **detail):
    page.evaluate("(d) => window.__api.dispatchEvent(new CustomEvent('flenwheel.train', {detail: d}))", detail)


def test_training_tab_follows_a_run(page):
    render(page)
    page.wait_for_function("() => document.querySelector('.fw-train-empty')?.textContent.includes('No training yet')")
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


def test_a_card_shows_from_the_moment_the_node_starts_with_the_trainers_phases(page):
    render(page, 250)
    out = "/p/output/flenwheel/ada/models/flux_lora/char_v1"
    _send(page, kind="flux", output=out, event="phase", phase="starting the trainer")
    page.wait_for_selector(".fw-train-run")
    assert page.inner_text(".fw-train-status") == "preparing"
    assert page.inner_text(".fw-train-facts") == "starting the trainer…"
    assert page.inner_text(".fw-train-project") == "ada"
    _send(page, kind="flux", output=out, event="phase", phase="loading models")
    _send(page, kind="flux", output=out, event="phase", phase="caching latents", done=12, total=40)
    page.wait_for_function("() => document.querySelector('.fw-train-facts').textContent.includes('12/40')")
    assert page.inner_text(".fw-train-facts") == "caching latents 12/40…"
    assert page.locator(".fw-train-chart").count() == 0
    _send(page, kind="flux", output=out, event="start", step=0, total=30)
    page.wait_for_function("() => document.querySelector('.fw-train-facts').textContent.startsWith('step 0/30')")
    assert page.inner_text(".fw-train-status") == "running" and page.locator(".fw-train-run").count() == 1


def test_runs_on_disk_are_listed_beside_the_live_ones(page):
    """A page opened after the training (or in another browser) still lists it."""
    out = "/p/output/flenwheel/ada_old/models/flux_lora/char_v2"
    SAVED_RUNS.append({"output": out, "kind": "flux", "status": "finished", "step": 4, "total": 4, "loss": 0.25,
                       "lora": out + "/char_lora_v2.safetensors", "error": None, "checkpoints": [4],
                       "losses": [[1, 1.0], [2, 0.5], [3, 0.33], [4, 0.25]], "time": 1.0, "phase": None})
    render(page)
    page.wait_for_selector(".fw-train-run")
    assert page.inner_text(".fw-train-status") == "finished"
    assert page.inner_text(".fw-train-lora").endswith("char_v2/char_lora_v2.safetensors")
    assert len(page.get_attribute(".fw-train-raw", "points").split()) == 4
    assert "No training yet" not in page.inner_text("#sidebar")
