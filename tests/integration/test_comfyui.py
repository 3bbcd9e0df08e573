"""The pack inside a real ComfyUI: registration, templates, web files, review routes, and every template run.

Needs COMFYUI_DIR (see conftest.py and docs/comfyui-integration.md); skipped otherwise. Workflows
in workflows/api/ run through ``flenwheel comfy run`` with test values from
tests/integration/workflow_overrides.json: ``{"<workflow file stem>": ["Node title.input=value", ...]}``,
where a value may use {tiny_flux}, {tiny_qwen_edit}, {faces} (../shared/faces), {tiny_angle_lora} (a tiny
LoRA in ComfyUI's loras folder), {project_new} (a folder with no project yet) and {project_STATE}
(a private copy of the tiny flywheel project at STATE, see conftest.FLYWHEEL_STATES). EXPECTED
lists what each template must leave in that project and print."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from PIL import Image

import flenwheel
from flenwheel.cli import cli
from flenwheel.comfy_tools.dev.workflow_build import build
from flenwheel.comfy_tools.dev.workflow_templates import templates
from flenwheel.comfy_tools.node_specs import pack_object_info, server_specs
from flenwheel.comfy_tools.workflow_check import check_api
from flenwheel.comfy_tools.workflow_format import load_workflow, ui_to_api
from flenwheel.core.data.availability import MISSING_MARK
from flenwheel.core.data.project import Project

pytestmark = pytest.mark.integration

PACK_ROOT = Path(__file__).resolve().parents[2]

WORKFLOWS = PACK_ROOT / "workflows"
#: Native-graph templates need real model files in ComfyUI's folders, so they are validated, not run
#: (tests/integration/test_native_graphs.py).
API_WORKFLOWS = sorted(p for p in (WORKFLOWS / "api").glob("*.json") if "your own" not in p.name)
UI_WORKFLOWS = sorted(WORKFLOWS.glob("*.json"))
DEMO = PACK_ROOT / "tests" / "data" / "workflows"
OVERRIDES = Path(__file__).with_name("workflow_overrides.json")
WEB_DIR = PACK_ROOT / flenwheel.WEB_DIRECTORY
WEB_FILES = sorted(p for p in WEB_DIR.rglob("*") if p.is_file()) if WEB_DIR.is_dir() else []
RUN_TIMEOUT_S = os.environ.get("FLENWHEEL_COMFY_TIMEOUT", "600")


def comfy_run(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["comfy", "run", *args, "--wait", "--json", "--timeout", RUN_TIMEOUT_S])
    return result.exit_code, json.loads(result.stdout)


#: Fields newer ComfyUIs (0.12) add to every /object_info entry, which neither the frontend's widget layout
#: nor the validator reads: a node's inputs are never lists here, and search aliases only help the node search.
NEWER_FIELDS = frozenset({"is_input_list", "search_aliases"})


def without_dynamic(info: dict) -> dict:
    """An /object_info entry minus what depends on the machine: file lists, the module path and the
    missing-dependency note (its install line names the interpreter, which differs between here and ComfyUI)."""
    info = json.loads(json.dumps(info))
    info.pop("python_module", None)
    info["description"] = info["description"].split(MISSING_MARK)[0]
    for entries in info["input"].values():
        for name, spec in entries.items():
            if len(spec) > 1 and isinstance(spec[1], dict) and "dynamic_choices" in spec[1]:
                entries[name] = "<files>"
    return info


def test_pack_imports_cleanly(comfyui):
    log = comfyui.log_text()
    assert f"custom_nodes/{comfyui.pack}" in log, "ComfyUI did not try to load the pack"
    problems = [
        line
        for line in log.splitlines()
        if comfyui.pack in line and ("IMPORT FAILED" in line or "Cannot import" in line)
    ]
    problems += [line for line in log.splitlines() if "FLENwheel:" in line and "failed to load" in line]
    assert not problems, "\n".join(problems)


def test_object_info_lists_every_node_as_the_validator_sees_it(comfyui):
    served = comfyui.get_json("/object_info")
    missing = sorted(set(flenwheel.NODE_CLASS_MAPPINGS) - set(served))
    assert not missing, f"registered here but not in ComfyUI: {missing}"
    local = pack_object_info()
    for name, info in local.items():
        theirs = without_dynamic(served[name])
        mine = without_dynamic(info)
        added = set(theirs) - set(mine)
        assert added <= NEWER_FIELDS, f"{name}: ComfyUI serves fields the validator does not know: {added}"
        theirs = {key: value for key, value in theirs.items() if key not in NEWER_FIELDS}
        for section, entries in mine["input"].items():
            for input_name, spec in entries.items():
                if spec == "<files>":
                    theirs["input"][section][input_name] = "<files>"
        assert mine == theirs, f"{name}: the validator's spec differs from what ComfyUI serves"
        if MISSING_MARK in served[name]["description"]:  # the install line is for ComfyUI's own Python
            assert f"{os.environ.get('COMFYUI_PYTHON', sys.executable)} -m pip install" in served[name]["description"]


def test_workflow_templates_list_the_pack_workflows(comfyui):
    if not UI_WORKFLOWS:
        pytest.skip("workflows/ holds no workflow yet")
    listed = comfyui.get_json("/api/workflow_templates")
    assert sorted(listed.get(comfyui.pack, [])) == sorted(p.stem for p in UI_WORKFLOWS)
    for path in UI_WORKFLOWS:
        status, body = comfyui.get(f"/api/workflow_templates/{comfyui.pack}/{quote(path.name)}")
        assert status == 200 and json.loads(body) == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", WEB_FILES, ids=[p.relative_to(WEB_DIR).as_posix() for p in WEB_FILES])
def test_web_extension_files_are_served(comfyui, path):
    relative = path.relative_to(WEB_DIR).as_posix()
    status, body = comfyui.get(f"/extensions/{comfyui.pack}/{relative}")
    assert status == 200 and body == path.read_bytes()
    if path.suffix == ".js":
        assert f"/extensions/{comfyui.pack}/{relative}" in comfyui.get_json("/extensions")


def test_foundation_nodes_run_through_the_runner(comfyui, faces, tmp_path):
    """The hand-made curate workflow, run for real: sources curated, then loaded and saved."""
    photo = faces / "obama" / "obama.jpg"
    (comfyui.base / "input").mkdir(exist_ok=True)
    Image.open(photo).convert("RGB").save(comfyui.base / "input" / "portrait.png")
    api = load_workflow(DEMO / "api" / "curate_demo.json")
    curate_only = {k: v for k, v in api.items() if k not in ("9", "10")}
    (tmp_path / "curate.json").write_text(json.dumps(curate_only), encoding="utf-8")
    code, report = comfy_run(str(tmp_path / "curate.json"), "--server", comfyui.url)
    assert code == 0, report["message"]
    text = report["outputs"]["7"]["text"][0]
    assert text.startswith("sources source/v1") and "usable images >= 10: 1 of 1 usable" in text
    sources = comfyui.base / "output" / "flenwheel" / "demo_character" / "data" / "source" / "v1"
    assert len(list(sources.glob("*.png"))) == 1
    code, report = comfy_run(
        str(DEMO / "api" / "curate_demo.json"), "--server", comfyui.url, "--download", str(tmp_path / "out")
    )
    assert code == 0, report["message"]
    saved = [Path(p) for p in report["downloaded"]]
    assert any(p.parent.name == "flenwheel" and p.name.startswith("sources_") for p in saved)
    assert all(Image.open(p).size[0] > 0 for p in saved)


PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: What each template leaves in its project (globs that must match) and prints (node title -> text).
EXPECTED: dict[str, tuple[list[str], dict[str, str]]] = {
    "01 Curate sources": (["data/source/v1/*.png"], {"Step 1.1 report": "usable images"}),
    "02 Enrich with Qwen-Image-Edit": (["data/enriched/v1/*.png"], {"Step 1.2 summary": "multiple_angles"}),
    "03 Review enriched images": (["data/enriched/v1/good/*.png", "data/enriched/v1/rejected/*.png"],
                           {"Review summary": "0 pending"}),
    "04 Train the FLUX character LoRA": (["models/flux_lora/char_v1/char_lora_v1.safetensors"],
                                         {"Training summary": "v1"}),
    "05 Generate synthetic images": (["data/synthetic/v1/*.png"], {"Step 1.5 summary": "50+ images"}),
    "06 Identity filter": ([], {"Scores": "face_count"}),
    "07 Pick the pristine synthetic set": ([], {"Review summary": "synthetic"}),
    "08 Train the next LoRA version": (["models/flux_lora/char_v2/char_lora_v2.safetensors"],
                                       {"Training summary": "v2"}),
    "09 Corrections to triplets": (["data/qwen_training/v1/triplets.jsonl", "data/qwen_training/v1/target/*"],
                                   {"Step 2.1 report": "triplets"}),
    "10 Train the editor LoRA": (["models/qwen_lora/v1/qwen_char_lora_v1.safetensors"], {"Training summary": "v1"}),
    "11 Enrich with our editor": (["data/enriched/v2/*.png", "benchmarks/editors/base_vs_ours/*"],
                                  {"Step 2.3 report": "ours"}),
    "12 Model card benchmark": (["benchmarks/char_v1/results.json", "benchmarks/char_v1/model_card.png"],
                                {"Summary": "first try"}),
    # a fresh project with pass-through reviews has no corrections: the editor flywheel takes its skip path
    "13 One whole flywheel turn": (["models/flux_lora/char_v2/char_lora_v2.safetensors",
                                    "benchmarks/char_v1/results.json", "benchmarks/char_v2/results.json"],
                                   {"Step 2.1 report": "skipped: 0 triplets, fewer than 10",
                                    "Editor training summary": "skipped: 0 triplets, fewer than 10",
                                    "Editors compared": "skipped: 0 triplets, fewer than 10"}),
}


def overrides_for(path: Path, request, tmp_path: Path) -> tuple[list[str], Path | None]:
    """The workflow's test values with their placeholders filled in, and the project folder they name."""
    if not OVERRIDES.exists():
        return [], None
    entries = json.loads(OVERRIDES.read_text(encoding="utf-8")).get(path.stem, [])
    values = {"project_new": str(tmp_path / "new_project")}
    for name in sorted({name for entry in entries for name in PLACEHOLDER.findall(entry)} - set(values)):
        if name in ("tiny_flux", "tiny_qwen_edit", "faces"):
            values[name] = str(request.getfixturevalue(name))
        elif name.startswith("project_"):
            state = name.removeprefix("project_")
            values[name] = str(request.getfixturevalue("flywheel_states").copy(state, tmp_path / name))
        else:
            values.update(request.getfixturevalue("comfy_loras"))
    project = next((Path(values[n]) for e in entries for n in PLACEHOLDER.findall(e) if n.startswith("project_")),
                   None)
    return [PLACEHOLDER.sub(lambda match: values[match.group(1)], entry) for entry in entries], project


@pytest.mark.parametrize("path", API_WORKFLOWS, ids=[p.name for p in API_WORKFLOWS])
def test_api_workflow_runs(comfyui, path, request, tmp_path):
    workflow = tmp_path / path.name
    shutil.copy(path, workflow)
    entries, project = overrides_for(path, request, tmp_path)
    code, report = comfy_run(str(workflow), "--server", comfyui.url, *[a for e in entries for a in ("--set", e)])
    assert code == 0, f"exit {code}: {report['message']}"
    files, texts = EXPECTED.get(path.stem, ([], {}))
    for pattern in files:
        assert project is not None and list(project.glob(pattern)), f"{path.stem} left no {pattern} in {project}"
    titles = {node_id: node["_meta"]["title"] for node_id, node in load_workflow(path).items()}
    printed = {titles[node_id]: " ".join(map(str, out.get("text", []))) for node_id, out in report["outputs"].items()}
    for title, wanted in texts.items():
        assert wanted in printed.get(title, ""), f"{title} printed {printed.get(title)!r}, expected {wanted!r}"


def test_review_routes_are_served(comfyui):
    """The review page's API answers under /flenwheel/review and /api/flenwheel/review, and lists
    the projects found under ComfyUI's output folder."""
    project = Project.init(comfyui.base / "output" / "flenwheel" / "routes_probe", name="Routes probe")
    for prefix in ("/api/flenwheel/review", "/flenwheel/review"):
        stages = comfyui.get_json(f"{prefix}/stages")["stages"]
        assert {"enriched", "synthetic", "rerun", "benchmark"} <= {stage["name"] for stage in stages}
        listed = comfyui.get_json(f"{prefix}/projects")["projects"]
        entry = next((p for p in listed if p["name"] == project.config.name), None)
        assert entry is not None, f"{prefix}/projects does not list {project.root}: {listed}"
        datasets = comfyui.get_json(f"{prefix}/{entry['key']}/datasets")
        assert datasets["datasets"] == []
    status, _ = comfyui.get("/api/flenwheel/review/not-a-project/datasets")
    assert status == 404
    status, body = comfyui.get(f"/extensions/{comfyui.pack}/review/index.html")
    assert status == 200 and b"mountReview" in body


def test_review_routes_refuse_a_rebinding_host_inside_comfyui(comfyui):
    """DNS rebinding: a request addressed to another name with a matching Origin is refused by our routes."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{comfyui.url}/api/flenwheel/review/projects",
                                     headers={"Host": "evil.example", "Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403 and b"answers only" in refused.value.read()


@pytest.fixture(scope="module")
def served_specs(comfyui):
    """Every node as this ComfyUI serves it (its own core nodes, whatever their version)."""
    return server_specs(comfyui.get_json("/object_info"))


@pytest.fixture(scope="module")
def server_templates(served_specs):
    """Each template as the builder writes it for this ComfyUI: every input its nodes declare, filled."""
    return {template.name: build(template, served_specs) for template in templates()}


def test_templates_built_for_this_comfyui_fill_every_input_it_declares(served_specs, server_templates):
    """The builder reads the running ComfyUI's /object_info: what it writes passes the validator against
    that ComfyUI, and the shipped API twins give every required input this ComfyUI's nodes declare."""
    def input_problems(prompt: dict) -> list[str]:  # model file names are checked by ComfyUI itself
        return [str(p) for p in check_api(prompt, served_specs)
                if "is missing" in p.message or "does not exist" in p.message]

    for name, ui in server_templates.items():
        assert not input_problems(ui_to_api(ui, served_specs)), (name, input_problems(ui_to_api(ui, served_specs)))
    for path in sorted((WORKFLOWS / "api").glob("*.json")):
        missing = [problem for problem in input_problems(load_workflow(path)) if "is missing" in problem]
        assert not missing, f"{path.name}: " + "; ".join(missing)


@pytest.fixture(scope="module")
def frontend(comfyui):
    """ComfyUI's own frontend in headless Chromium, to compare its UI->API conversion with ours."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.skip(f"no Chromium at {chromium} (set CHROMIUM_PATH)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(comfyui.url)
        page.wait_for_function("window.app && window.app.graph", timeout=120_000)
        yield page
        browser.close()


FRONTEND_CASES = ["tests/data/workflows/curate_demo.json", *(p.stem for p in UI_WORKFLOWS)]


@pytest.mark.parametrize("case", FRONTEND_CASES)
def test_converter_matches_the_frontend(frontend, served_specs, server_templates, case):
    """The hand-made workflow, and every template as built for this ComfyUI, convert exactly as the
    frontend this ComfyUI serves converts them (its version read from the page)."""
    workflow = server_templates[case] if case in server_templates else load_workflow(PACK_ROOT / case)
    theirs = frontend.evaluate(
        "async (wf) => { await window.app.loadGraphData(wf);"
        " return (await window.app.graphToPrompt()).output; }",
        workflow,
    )
    version = frontend.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")
    assert ui_to_api(workflow, served_specs, version) == theirs
