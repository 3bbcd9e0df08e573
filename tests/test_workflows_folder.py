"""Every shipped workflow (workflows/*.json and their API twins in workflows/api/) validates.

The specs come from the nodes as they are now, so changing a node's inputs without updating the
workflows that use it fails here; so does a committed template that differs from what its
description in comfy_tools/dev/workflow_templates.py gives (run `python scripts/build_workflows.py`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from flenwheel.comfy_tools.dev.workflow_build import Node, Template, TemplateError, build, render_files
from flenwheel.comfy_tools.dev.workflow_templates import templates
from flenwheel.comfy_tools.node_specs import known_specs
from flenwheel.comfy_tools.workflow_check import check_in_folder, check_ui, workflow_files

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
FILES = workflow_files(WORKFLOWS) if WORKFLOWS.is_dir() else []
TEMPLATES = sorted(WORKFLOWS.glob("[0-9][0-9] *.json"))
#: The newest ComfyUI tests/integration runs (docs/comfyui-integration.md); comfy_core_nodes.json describes it.
NEWEST_COMFYUI = "0.12.1"


@pytest.fixture(scope="module")
def specs():
    return known_specs()


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(WORKFLOWS).as_posix() for p in FILES])
def test_shipped_workflow_is_valid(path, specs):
    problems = check_in_folder(path, WORKFLOWS, specs)
    assert not problems, "\n".join(map(str, problems))


def test_committed_templates_are_what_their_descriptions_give(specs):
    files = render_files(templates(), specs)
    committed = {p.relative_to(WORKFLOWS).as_posix() for p in FILES}
    assert committed == set(files), "run `python scripts/build_workflows.py` and commit workflows/"
    stale = [name for name, text in files.items() if (WORKFLOWS / name).read_text(encoding="utf-8") != text]
    assert not stale, f"stale templates {stale}: run `python scripts/build_workflows.py` and commit them"


def test_templates_cover_the_flywheel_in_order_with_a_note_and_thumbnail():
    assert [p.stem[:2] for p in TEMPLATES] == [f"{i:02d}" for i in range(1, len(templates()) + 1)]
    for path in TEMPLATES:
        thumbnail = path.with_suffix(".jpg")
        assert thumbnail.is_file(), f"{thumbnail.name} is missing: run scripts/screenshots.py"
        assert Image.open(thumbnail).size == (400, 300)
        text = path.read_text(encoding="utf-8")
        assert '"type": "MarkdownNote"' in text


def test_file_names_are_titles_in_flywheel_order_and_each_has_its_own_thumbnail():
    """The template browser titles a card by its file name: "01 Curate sources", not "01_curate_sources"."""
    names = [template.name for template in templates()]
    assert names == sorted(names) and all(re.fullmatch(r"\d\d [A-Z][\w -]+", name) for name in names), names
    assert sorted(p.stem for p in WORKFLOWS.glob("*.jpg")) == names


def test_every_note_says_what_the_template_needs():
    for template in templates():
        types = {node.type for node in template.nodes}
        assert "**Needs:**" in template.note, template.name
        if "FlenwheelFaceIdentityFilter" in types:
            assert "--no-deps face-recognition-ng" in template.note and "python_embeded" in template.note
        loads_a_model = types & {"FlenwheelLoadFlux", "FlenwheelQwenEditLoader"}
        if loads_a_model or any(t.startswith("FlenwheelTrain") for t in types):
            assert "NVIDIA GPU" in template.note and "`none`" in template.note, template.name


def test_memory_options_default_to_a_24_gb_card(specs):
    for template in templates():
        for node in template.nodes:
            if node.type in ("FlenwheelLoadFlux", "FlenwheelQwenEditLoader"):
                assert node.values["quantize"] == "nf4" and node.values["offload"] == "model", template.name
            if node.type.startswith("FlenwheelTrain"):
                assert node.values["quantize"] == "nf4" and node.values["gradient_checkpointing"], template.name


def test_a_node_input_change_fails_the_shipped_workflow(specs):
    """Simulate a node that gained a widget after the template was written."""
    from dataclasses import replace

    from flenwheel.comfy_tools.node_specs import InputSpec
    from flenwheel.comfy_tools.workflow_format import load_workflow

    train = specs["FlenwheelTrainFluxLora"]
    extra = InputSpec("warmup_steps", "INT", {"default": 0, "min": 0}, True)
    changed = {**specs, train.name: replace(train, inputs=(*train.inputs[:3], extra, *train.inputs[3:]),
                                            _by_name={})}
    problems = check_ui(load_workflow(WORKFLOWS / "04 Train the FLUX character LoRA.json"), changed)
    assert any("widget values" in str(problem) and "re-save" in str(problem) for problem in problems)


def test_a_description_that_no_longer_fits_its_node_is_refused(specs):
    wrong_widget = Template("x", "note", [Node("p", "FlenwheelProject", 1, {"folder": "a"})])
    with pytest.raises(TemplateError, match="has no widget folder"):
        build(wrong_widget, specs)
    wrong_link = Template("x", "note", [Node("p", "FlenwheelProject", 1),
                                        Node("c", "FlenwheelCurateSources", 2, links={"project": "p.summary"})])
    with pytest.raises(TemplateError, match="gives STRING"):
        build(wrong_link, specs)


#: ComfyUI's frontend draws a node's title bar above its ``pos`` and a group's title bar
#: ``font_size * 1.4`` tall at the top of its bounding box.
NODE_TITLE_H, GROUP_TITLE_SCALE = 30, 1.4


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_no_node_covers_a_group_title(path):
    """On the positions the template is saved with: a node over a group's title hides what the group is."""
    workflow = json.loads(path.read_text(encoding="utf-8"))
    for group in workflow["groups"]:
        left, top, width, _ = group["bounding"]
        bar_bottom = top + group.get("font_size", 24) * GROUP_TITLE_SCALE
        for node in workflow["nodes"]:
            (x, y), (w, h) = node["pos"], node["size"]
            covers = x < left + width and x + w > left and y - NODE_TITLE_H < bar_bottom and y + h > top
            assert not covers, f"{node.get('title') or node['type']} covers the title of group '{group['title']}'"


def test_every_template_fills_every_input_of_the_newest_comfyui_core_nodes(specs):
    """The core-node list is the newest supported ComfyUI's, and every API twin gives each node every
    input it declares (a link or a value): ComfyUI 0.12's ImageScaleToTotalPixels refused template 15
    without ``resolution_steps``."""
    from flenwheel.comfy_tools.node_specs import CORE_NODES_FILE
    from flenwheel.comfy_tools.workflow_format import load_workflow

    assert json.loads(CORE_NODES_FILE.read_text(encoding="utf-8"))["comfyui_version"] == NEWEST_COMFYUI
    for path in sorted((WORKFLOWS / "api").glob("*.json")):
        for node_id, node in load_workflow(path).items():
            spec = specs[node["class_type"]]
            missing = [item.name for item in spec.inputs
                       if (item.is_widget or item.required) and item.name not in node["inputs"]]
            assert not missing, f"{path.name} node {node_id} ({spec.name}) lacks {missing}"
