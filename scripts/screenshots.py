"""Screenshots for the README and the templates' thumbnails, taken from a real ComfyUI in headless Chromium.

    COMFYUI_DIR=/path/to/ComfyUI [COMFYUI_PYTHON=/path/to/its/python] python scripts/screenshots.py \
        [--front-end-root .../comfyui_frontend_package/static]

A development tool, not a test. It starts ComfyUI on the CPU with a temporary base directory and
this pack linked into its custom_nodes/ (the checkout is never touched), opens ComfyUI's own
frontend in headless Chromium (Playwright driving /usr/bin/chromium, no browser download), and:

- opens the template browser on this pack's templates and saves docs/images/template_browser.png
  (the thumbnails themselves are drawn by scripts/template_thumbnails.py);
- saves docs/images/workflow_graph.png (the enrichment template, readable at README size),
  docs/images/whole_turn_graph.png (the whole-turn template, 2600 px wide) and
  docs/images/native_graph.png (ComfyUI's own FLUX nodes feeding the flywheel);
- builds a project of the demo character's photos (the Grace Hopper portrait matplotlib ships, varied
  as `flenwheel demo` varies it; no photo from another repository) with the dataset API, edits
  simulated by plain image adjustments, with real identity scores and a few decisions, and saves
  docs/images/review_page.png: the review page with the side-by-side view of source and edit, and
  docs/images/review_tab.png, training_tab.png and node_library.png: the pack's sidebar tabs and
  its nodes in the library, at the sidebar's default width. The project also holds two flywheel
  turns, their report and a finished training log, and a second project of the same name, so the
  Training tab shows the Flywheel table (with the folder and the report link), the run read from
  disk and a run whose trainer is still loading its models.

The docs' screenshots are taken from the newest ComfyUI and frontend that can be had (README's
"Tested with"): ComfyUI 0.12.1 serving comfyui-frontend-package 1.58.1 through ``--front-end-root``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from flenwheel.core.data.project import Project
from flenwheel.core.identity.gate import resolve_gate
from flenwheel.core.review.store import ReviewStore
from flenwheel.core.turn.demo_photos import packaged_character
from flenwheel.core.turn.flywheel_report import write_flywheel_report
from flenwheel.core.turn.state import FlywheelState

ROOT = Path(__file__).resolve().parent.parent
#: The pack's folder in custom_nodes/ as `git clone` (and ComfyUI-Manager) names it: ComfyUI lists the
#: pack's templates under this name, and serves its web files below /extensions/<it>/.
PACK = "flenwheel"
#: The nodes' category in the node library (nodes/_types.py CATEGORY).
NODE_CATEGORY = "FLENwheel"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasMenu": False,
            "Comfy.Graph.CanvasInfo": False,
            # draw titles and widgets at any zoom, so a whole graph fits a thumbnail with its text
            "LiteGraph.Canvas.LowQualityRenderingZoomThreshold": 0.1}
GRAPH = "02 Enrich with Qwen-Image-Edit"
WHOLE_TURN = "13 One whole flywheel turn"
NATIVE = "14 Generate with your own FLUX graph"
REVIEW = "03 Review enriched images"


def start_comfyui(comfy_dir: Path, python: str, base: Path, front_end_root: Path | None = None
                  ) -> tuple[subprocess.Popen, str]:
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / PACK).symlink_to(ROOT, target_is_directory=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
               "--base-directory", str(base), "--database-url", "sqlite:///:memory:"]
    if front_end_root is not None:
        command += ["--front-end-root", str(front_end_root)]
    log = (base / "comfyui.log").open("wb")
    process = subprocess.Popen(command, cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"ComfyUI exited; see {base / 'comfyui.log'}")
        try:
            urllib.request.urlopen(url + "/object_info", timeout=5)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    sys.exit("ComfyUI did not start within 180 s")


def post_json(url: str, value: object) -> None:
    request = urllib.request.Request(url, data=json.dumps(value).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def simulated_edits(photo: Image.Image) -> list[tuple[str, str, Image.Image]]:
    """Plain adjustments standing in for Qwen edits, so the screenshot shows real faces."""
    warm = Image.merge("RGB", [band.point(lambda v, k=k: min(255, int(v * k)))
                               for band, k in zip(photo.split(), (1.15, 1.0, 0.8), strict=True)])
    sketch = ImageOps.autocontrast(ImageOps.grayscale(photo)).convert("RGB")
    width, height = photo.size
    close = photo.crop((width // 6, 0, width - width // 6, height * 5 // 6)).resize(photo.size)
    night = ImageEnhance.Brightness(ImageEnhance.Color(photo).enhance(0.5)).enhance(0.55)
    return [("lighting", "Change the lighting to a warm sunset glow.", warm),
            ("style", "Turn the photo into a charcoal sketch.", sketch),
            ("camera_angle", "Move the camera closer, a close-up of the face.", close),
            ("lighting", "Change the lighting to nighttime, lit by street lamps.", night)]


def review_project(output: Path) -> Project:
    """A project whose enriched images are real photos: edits of three of the demo character's sources."""
    project = Project.init(output / "flenwheel" / "grace_hopper", name="Grace Hopper")
    sources = project.create_dataset("source")
    folder = output / "demo-photos"
    packaged_character(folder)
    photos = [folder / name for name in ("hopper_portrait.png", "hopper_closeup.png", "hopper_warm.png")]
    parents = []
    for path in photos:
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        image.thumbnail((640, 640))
        parents.append((sources.add_image(image, stem=path.stem, angle="front", expression="neutral",
                                          caption=f"photo of {project.subject}"), image))
    sources.finish()
    gate = resolve_gate(project, "auto")
    enriched = project.create_dataset("enriched")
    records = []
    for index, (parent, image) in enumerate(parents):
        for family, prompt, edited in simulated_edits(image)[index % 2:index % 2 + 3]:
            records.append(_add_edit(enriched, edited, parent.id, family, prompt, gate))
    store = ReviewStore(project)
    decisions = ((1, "needs_correction", "identity_drift"), (3, "good", None), (4, "reject", "artifacts"),
                 (5, "good", None), (8, "good", None))
    for index, label, reason in decisions:
        record = records[index]
        store.decide(record.id, "enriched", enriched.version, label, reason=reason, reviewer="screenshot")
    return project


def flywheel_history(project: Project, output: Path) -> None:
    """Two finished turns with their report and the first LoRA's training log, as a user who ran the
    loop twice has them."""
    state = FlywheelState.load(project, auto_review=False)
    state.data["target"] = 0.8
    figures = ((1, "char_v1", 2, 7, None, 0.18, 26, []), (2, "char_v2", 5, 4, 0.13, 0.10, 20, ["ours:v1"]))
    for number, lora, verified, unverified, gain, corrections, pristine, editor in figures:
        entry = state.current([])
        entry.update(char_lora=lora, correction_rate=corrections, finished=f"2026-12-0{number}T12:00:00Z", gain=gain,
                     first_try={"verified": verified, "unverified": unverified, "cells": 23, "rate": verified / 23})
        entry["images"]["pristine"] = pristine
        entry["editor"].update(chosen=editor, why=None)
    state.data["stopped"] = {"reason": "max_turns reached (2)", "after_turn": 2}
    state.save()
    write_flywheel_report(state)
    run = project.root / "models" / "flux_lora" / "char_v1"
    run.mkdir(parents=True)
    now = time.time() - 3600
    events = [{"event": "start", "trainer": "flux", "step": 0, "total": 30, "time": now}]
    for step in range(1, 31):
        loss = 0.55 - 0.2 * (1 - math.exp(-step / 10)) + 0.08 * math.sin(step * 2.3)
        events.append({"event": "step", "step": step, "total": 30, "loss": loss, "time": now + step})
    events.append({"event": "done", "status": "finished", "step": 30, "time": now + 31,
                   "lora_path": str(run / "char_lora_v1.safetensors")})
    (run / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")


def older_namesake(output: Path) -> None:
    """A project of the same name made earlier (the review tab opens the newest, the one with edits)."""
    Project.init(output / "flenwheel" / "hopper_archive", name="Grace Hopper")


def _add_edit(dataset, image, parent_id, family, prompt, gate):
    scores = {"identity": gate.score(image).to_json()} if gate is not None else {}
    full = f"{prompt} Keep the person's face, features, skin tone and hairstyle identical."
    return dataset.add_image(image, stem=f"edit_{family}", parents=[parent_id], prompt=full, family=family,
                             scores=scores)


def save_png(data: bytes, path: Path, limit: int = 600_000) -> None:
    """PNG as small as it stays sharp: optimised, then an adaptive palette when still too big."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    if path.stat().st_size > limit:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path  # --images may point elsewhere
    print(f"{shown}: {image.width}x{image.height}, {path.stat().st_size // 1024} KB")


FIT_GRAPH = """async ([workflow, margin]) => {
  const app = window.app;
  await app.loadGraphData(workflow);
  await new Promise((done) => setTimeout(done, 500));
  const boxes = app.graph._nodes.map((n) => [n.pos[0], n.pos[1] - 30, n.size[0], n.size[1] + 30])
    .concat(app.graph._groups.map((g) => g._bounding || g.bounding));
  const left = Math.min(...boxes.map((b) => b[0])), top = Math.min(...boxes.map((b) => b[1]));
  const right = Math.max(...boxes.map((b) => b[0] + b[2])), bottom = Math.max(...boxes.map((b) => b[1] + b[3]));
  const element = app.canvas.canvas, width = element.clientWidth, height = element.clientHeight;
  const scale = Math.min(1.2, (width - 2 * margin) / (right - left), (height - 2 * margin) / (bottom - top));
  app.canvas.ds.scale = scale;
  app.canvas.ds.offset = [(width / scale - (right - left)) / 2 - left, (height / scale - (bottom - top)) / 2 - top];
  app.canvas.setDirty(true, true);
  await new Promise((done) => setTimeout(done, 1500));
  return scale;
}"""


def open_canvas(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=120_000)
    page.wait_for_timeout(2000)
    page.keyboard.press("Escape")
    page.evaluate("() => window.app.extensionManager.command.execute('Workspace.ToggleFocusMode')")
    page.wait_for_timeout(500)


def template_browser_shot(browser, url: str, images: Path) -> None:
    """The template browser opened on this pack's cards: titles, order and thumbnails as a user sees them."""
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    open_canvas(page, url)
    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.get_by_text(PACK, exact=True).first.click(timeout=30_000)
    page.wait_for_timeout(3000)
    save_png(page.screenshot(), images / "template_browser.png")
    page.close()


def open_tab(page, tab_id: str) -> None:
    """Open a sidebar tab by its id (frontend 1.58's tab buttons carry no per-tab class to click)."""
    page.evaluate(f"() => window.app.extensionManager.command.execute('Workspace.ToggleSidebarTab.{tab_id}')")
    page.wait_for_timeout(1000)


def sidebar_shots(browser, url: str, images: Path, project_root: Path) -> None:
    """The node library (FLENwheel's names), Review and Training tabs at the sidebar's default width,
    beside the review template (not the frontend's default graph, whose model files are missing here)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    open_canvas(page, url)
    page.evaluate(FIT_GRAPH, [json.loads((ROOT / "workflows" / f"{REVIEW}.json").read_text(encoding="utf-8")), 30])
    page.evaluate("() => document.querySelectorAll('.p-toast-message').forEach((toast) => toast.remove())")
    page.evaluate("() => window.app.extensionManager.command.execute('Workspace.ToggleFocusMode')")
    page.wait_for_timeout(1000)
    open_tab(page, "node-library")
    page.get_by_text(NODE_CATEGORY, exact=True).first.click(timeout=30_000)
    page.wait_for_timeout(1000)
    for category in ("curate", "identity", "editor"):
        page.get_by_text(category, exact=True).first.click(timeout=10_000)
    page.wait_for_timeout(1500)
    save_png(page.screenshot(), images / "node_library.png")
    open_tab(page, "flenwheel-review")
    page.wait_for_timeout(3000)
    # two projects are called Grace Hopper (see older_namesake): show the one with the edits
    projects = page.locator("select", has=page.locator("option", has_text="(grace_hopper)")).first
    projects.select_option(label="Grace Hopper (grace_hopper)")
    page.wait_for_timeout(4000)
    save_png(page.screenshot(), images / "review_tab.png")
    open_tab(page, "flenwheel-training")
    page.wait_for_selector(".fw-flywheel-table", timeout=30_000)
    page.evaluate(LOADING_RUN, str(project_root / "models" / "flux_lora" / "char_v2"))
    page.wait_for_timeout(2000)
    save_png(page.screenshot(), images / "training_tab.png")
    page.close()


# What a training node pushes (as flenwheel.train) while its trainer is still loading the models: the
# Training tab shows the run's card from that moment.
LOADING_RUN = """(output) => {
  const api = window.comfyAPI.api.api;
  const send = (detail) => api.dispatchEvent(
    new CustomEvent("flenwheel.train", { detail: { kind: "flux", output, ...detail } }));
  send({ event: "phase", phase: "starting the trainer" });
  send({ event: "phase", phase: "loading models" });
}"""


def graph_shots(browser, url: str, images: Path) -> None:
    """The README's graphs: the enrichment template in a wide canvas, the whole turn in a wider one."""
    for name, target, viewport in ((GRAPH, "workflow_graph.png", (1800, 1000)),
                                   (WHOLE_TURN, "whole_turn_graph.png", (2600, 1700)),
                                   (NATIVE, "native_graph.png", (2200, 1100))):
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        open_canvas(page, url)
        page.evaluate(FIT_GRAPH, [json.loads((ROOT / "workflows" / f"{name}.json").read_text(encoding="utf-8")), 30])
        save_png(page.screenshot(), images / target)
        page.close()


def review_shot(page, url: str, images: Path) -> None:
    projects = get_json(url + "/api/flenwheel/review/projects")["projects"]
    # two projects are called Grace Hopper (see older_namesake): the one with the edits
    key = next(p["key"] for p in projects if p["folder"].rstrip("/").split("/")[-1] == "grace_hopper")
    page.goto(f"{url}/extensions/{PACK}/review/index.html?project={key}&stage=enriched")
    page.wait_for_selector("img", timeout=60_000)
    page.wait_for_timeout(2500)
    page.keyboard.press("Enter")
    page.wait_for_timeout(2500)
    save_png(page.screenshot(), images / "review_page.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, default=os.environ.get("COMFYUI_DIR"),
                        help="ComfyUI checkout (default: $COMFYUI_DIR)")
    parser.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                        help="interpreter with ComfyUI's requirements (default: $COMFYUI_PYTHON, else this one)")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--front-end-root", type=Path, default=os.environ.get("COMFYUI_FRONT_END_ROOT"),
                        help="serve this frontend (a comfyui_frontend_package/static folder) instead of ComfyUI's own")
    args = parser.parse_args()
    if not args.comfyui or not (Path(args.comfyui) / "main.py").is_file():
        parser.error("point --comfyui (or COMFYUI_DIR) at a ComfyUI checkout")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="flenwheel-shots-") as temp:
        base = Path(temp)
        process, url = start_comfyui(Path(args.comfyui).resolve(), args.python, base, args.front_end_root)
        try:
            older_namesake(base / "output")
            project = review_project(base / "output")
            flywheel_history(project, base / "output")
            for name, value in SETTINGS.items():
                post_json(f"{url}/api/settings/{name}", value)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                graph_shots(browser, url, args.images)
                template_browser_shot(browser, url, args.images)
                sidebar_shots(browser, url, args.images, project.root)
                review_shot(browser.new_page(viewport={"width": 1440, "height": 900}), url, args.images)
                browser.close()
        finally:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
