"""The review page in a real browser (headless Debian Chromium through Playwright).

Standalone: 12 images labelled with the keyboard (reason picker included), undo, a reload shows
every decision again. ComfyUI: the sidebar entry (web/sidebar_tabs.js + review_tab.js) against a stand-in for
ComfyUI's app/api modules and the routes mounted the way PromptServer mounts them.
"""

from __future__ import annotations

import sys
import time
import types

import pytest
from aiohttp import web

from flenwheel.core.data.project import Project
from flenwheel.core.review.server import PAGE_DIR, create_app
from flenwheel.core.review.store import ReviewStore

READY = ".fw-review[data-ready='1']"


def _wait_saved(page) -> None:
    """Until every decision the page sent has been answered."""
    page.wait_for_function("() => window.fwReview && window.fwReview.session.inFlight === 0", timeout=10_000)


def _badges(page) -> list[str]:
    return page.eval_on_selector_all(".fw-tile .fw-badge", "nodes => nodes.map(n => n.textContent)")


def test_keyboard_review_survives_a_reload(enriched, chromium, live_app):
    project, records = enriched(12)
    url = live_app(create_app(project, place_delay=0.2))
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/")
    page.wait_for_selector(READY)
    assert page.locator(".fw-tile").count() == 12
    assert "0 / 12" in page.inner_text(".fw-progress")

    page.keyboard.press("1")                      # 1: good -> moves on to image 2
    page.keyboard.press("g")                      # 2: good
    page.keyboard.press("3")                      # 3: reject -> reason picker
    page.wait_for_selector(".fw-modal")
    page.keyboard.press("2")                      # artifacts
    page.keyboard.press("c")                      # 4: needs correction, own words
    page.wait_for_selector(".fw-modal")
    page.keyboard.press("o")
    page.keyboard.type("eyes changed colour")
    page.keyboard.press("Enter")
    page.keyboard.press("r")                      # 5: reject, then cancel: nothing recorded
    page.wait_for_selector(".fw-modal")
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowRight")             # skip 5
    page.keyboard.press("2")                      # 6: needs correction
    page.keyboard.press("1")                      # identity drift
    page.keyboard.press("1")                      # 7: good
    page.keyboard.press("z")                      # undo 7
    _wait_saved(page)
    page.wait_for_function("() => document.querySelectorAll('.fw-tile[data-label]:not([data-label=\"\"])')"
                           ".length === 5")
    page.keyboard.press("Enter")                  # large view of the selected image
    assert page.is_visible(".fw-viewer") and page.locator(".fw-figure").count() == 2
    assert "change the background to scene" in page.inner_text(".fw-viewer-info")

    expected = ["Good", "Good", "Reject", "Needs correction", "", "Needs correction"] + [""] * 6
    decided = ReviewStore(project).current("enriched", "v1")
    assert {records[i].id: decided[records[i].id].label for i in (0, 1, 2, 3, 5)} == {
        records[0].id: "good", records[1].id: "good", records[2].id: "reject",
        records[3].id: "needs_correction", records[5].id: "needs_correction"}
    assert decided[records[3].id].reason == "eyes changed colour"
    assert decided[records[5].id].reason == "identity_drift"

    page.reload()
    page.wait_for_selector(READY)
    assert _badges(page) == expected
    assert "5 / 12" in page.inner_text(".fw-progress")
    assert not errors


def test_the_page_says_who_decided_and_marks_auto_review(enriched, chromium, live_app):
    from flenwheel.core.review.stages import AUTO_REVIEWER

    project, records = enriched(3)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good", reviewer=AUTO_REVIEWER)
    store.decide(records[1].id, "enriched", "v1", "reject", reason="artifacts", reviewer="ana")
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    page.goto(live_app(create_app(project, place_delay=0.2)) + "/")
    page.wait_for_selector(READY)
    assert _badges(page)[:2] == ["Good (auto)", "Reject"]
    assert page.locator(".fw-tile .fw-badge.fw-auto").count() == 1
    page.locator(".fw-tile").nth(0).dblclick()
    page.wait_for_selector(".fw-viewer .fw-decider")
    assert page.inner_text(".fw-viewer .fw-decider") == "decided by auto-review (demo only, not a human)"
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.fw-viewer .fw-decider')?.textContent.includes('ana')")
    assert page.inner_text(".fw-viewer .fw-decider").startswith("decided by ana · ")


def test_comfyui_sidebar_tab(enriched, chromium, live_app, monkeypatch, tmp_path):
    project, records = enriched(3)
    fake = types.SimpleNamespace(routes=web.RouteTableDef(), send_sync=lambda *a, **k: None)
    server = types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=fake))
    monkeypatch.setitem(sys.modules, "server", server)
    from flenwheel.nodes import _review_routes, project_node

    monkeypatch.setattr(_review_routes, "_state", {})
    project_node.FlenwheelProject().open(str(project.root), False, "x", "ohwx_char", "person")
    assert _review_routes.mount_review_routes()

    app = web.Application()
    app.add_routes([web.route(r.method, "/api" + r.path, r.handler) for r in fake.routes])
    app.add_routes(STUB_ROUTES)
    app.router.add_static("/extensions/flenwheel/", PAGE_DIR.parent)
    url = live_app(app)

    page = chromium.new_page(viewport={"width": 420, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/")
    page.wait_for_function("() => window.__tabs.length === 2")  # Review, then Training
    tab = page.evaluate("() => ({id: window.__tabs[0].id, type: window.__tabs[0].type})")
    assert tab == {"id": "flenwheel-review", "type": "custom"}
    page.evaluate("() => window.__tabs[0].render(document.getElementById('sidebar'))")
    page.wait_for_selector(READY)
    assert page.locator("#sidebar .fw-tile").count() == 3
    assert page.get_attribute(".fw-popout", "href").endswith("/extensions/flenwheel/review/index.html")
    page.click("#sidebar .fw-tile >> nth=1")
    page.keyboard.press("g")
    deadline = time.monotonic() + 10
    while records[1].id not in ReviewStore(project).current("enriched", "v1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ReviewStore(project).current("enriched", "v1")[records[1].id].label == "good"

    page.evaluate("""() => window.__api.dispatchEvent(new CustomEvent('flenwheel.review.waiting',
        {detail: {project: 'x', stage: 'enriched', version: 'v1', pending: 2, total: 3}}))""")
    toasts = page.evaluate("() => window.__toasts.map(t => t.summary)")
    assert toasts == ["FLENwheel Review Gate is waiting"]
    assert page.evaluate("() => window.__commands") == ["Workspace.ToggleSidebarTab.flenwheel-review"]
    assert not errors


STUB_APP = """
window.__tabs = []; window.__toasts = []; window.__commands = [];
export const app = {
  registerExtension(extension) { extension.setup?.(); },
  extensionManager: {
    registerSidebarTab(tab) { window.__tabs.push(tab); },
    toast: { add(message) { window.__toasts.push(message); } },
    command: { execute(id) { window.__commands.push(id); } },
    sidebarTab: { activeSidebarTabId: null },
  },
};
"""
STUB_API = """
class Api extends EventTarget { apiURL(path) { return "/api" + path; } }
export const api = new Api();
window.__api = api;
"""
STUB_PAGE = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body>
<div id="sidebar" style="width:400px;height:860px"></div>
<script type="module">import "/extensions/flenwheel/sidebar_tabs.js";</script></body></html>"""


async def _stub(request: web.Request) -> web.Response:
    bodies = {"/scripts/app.js": STUB_APP, "/scripts/api.js": STUB_API}
    if request.path in bodies:
        return web.Response(text=bodies[request.path], content_type="text/javascript")
    return web.Response(text=STUB_PAGE, content_type="text/html")


STUB_ROUTES = [web.get("/", _stub), web.get("/scripts/app.js", _stub), web.get("/scripts/api.js", _stub)]


def test_project_lookup_never_takes_a_path(tmp_path, monkeypatch):
    """Inside ComfyUI the sidebar sees session projects and output-folder projects, nothing else."""
    from flenwheel.core.review.items import ForeignImageError
    from flenwheel.core.review.projects import ProjectRegistry, project_key

    output = tmp_path / "output"
    inside = Project.init(output / "flenwheel" / "alice", name="Alice")
    outside = Project.init(tmp_path / "elsewhere" / "bob", name="Bob")
    registry = ProjectRegistry(search_roots=lambda: [output])
    assert [entry["name"] for entry in registry.entries()] == ["Alice"]
    assert registry.entries()[0]["folder"] == "flenwheel/alice"
    assert registry.get(project_key(inside)).root == inside.root
    with pytest.raises(ForeignImageError):
        registry.get(project_key(outside))
    with pytest.raises(ForeignImageError):
        registry.get(str(outside.root))
    registry.add(outside)
    assert registry.get(project_key(outside)).root == outside.root
