"""The workflow validator and UI->API converter, on hand-made workflows using FLENwheel and core nodes.

tests/data/workflows/curate_demo.json is a UI workflow written by hand (a reroute, a primitive
feeding a converted widget, a bypassed node, a note, a seed with its control value, core and pack
nodes). Its twin in api/ is what ComfyUI 0.3.64's own frontend (1.27.10) produced from it with
``app.graphToPrompt()``, so the converter is checked against the real thing, not against itself.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from flenwheel.comfy_tools import node_specs
from flenwheel.comfy_tools.node_specs import known_specs, types_match
from flenwheel.comfy_tools.object_info import describe
from flenwheel.comfy_tools.workflow_check import check_api, check_file, check_folder, check_ui, compare_twins
from flenwheel.comfy_tools.workflow_format import WorkflowError, load_workflow, ui_to_api, workflow_kind

DATA = Path(__file__).parent / "data" / "workflows"


@pytest.fixture(scope="module")
def specs():
    return known_specs()


@pytest.fixture
def ui():
    return load_workflow(DATA / "curate_demo.json")


@pytest.fixture
def api():
    return load_workflow(DATA / "api" / "curate_demo.json")


def node(workflow, node_id):
    return next(n for n in workflow["nodes"] if n["id"] == node_id)


def messages(problems):
    return [str(p) for p in problems]


def test_hand_made_workflow_and_its_twin_are_valid(ui, api, specs):
    assert workflow_kind(ui) == "ui" and workflow_kind(api) == "api"
    assert check_ui(ui, specs) == []
    assert check_api(api, specs) == []
    assert compare_twins(ui, api, specs) == []


def test_converter_reproduces_the_comfyui_frontend(ui, api, specs):
    converted = ui_to_api(ui, specs)
    assert converted == api
    # Frontend-only nodes vanish, the bypassed ImageInvert passes its input through, the primitive's
    # value lands in the converted widget, and control_after_generate / upload values stay UI-only.
    assert set(converted) == {"1", "2", "3", "6", "7", "9", "10", "12"}
    assert converted["10"]["inputs"]["images"] == ["9", 0]
    assert converted["3"]["inputs"]["caption"] == "photo of ohwx_char person, studio light"
    assert converted["3"]["inputs"]["images"] == ["2", 0]
    assert converted["12"]["inputs"] == {"noise_seed": 42}
    assert converted["2"]["inputs"] == {"image": "portrait.png"}
    assert converted["3"]["_meta"]["title"] == "Curate sources"
    assert converted["9"]["_meta"]["title"] == "FLENwheel Load Dataset"


def test_unknown_node_type_is_reported(ui, api, specs):
    ui["nodes"].append(
        {"id": 20, "type": "FlenwheelTeleport", "inputs": [], "outputs": [], "widgets_values": []}
    )
    api["20"] = {"class_type": "FlenwheelTeleport", "inputs": {}}
    assert any("node 20" in m and "unknown node type" in m for m in messages(check_ui(ui, specs)))
    assert any("node 20" in m and "unknown node type" in m for m in messages(check_api(api, specs)))
    with pytest.raises(WorkflowError, match="FlenwheelTeleport"):
        ui_to_api(ui, specs)


def test_bad_choice_is_reported_with_the_choices(ui, api, specs):
    node(ui, 3)["widgets_values"][1] = "sideways"
    api["3"]["inputs"]["angle"] = "sideways"
    for found in (messages(check_ui(ui, specs)), messages(check_api(api, specs))):
        assert len(found) == 1
        assert "node 3 'Curate sources'" in found[0] and "'angle'" in found[0]
        assert "'sideways' is not one of the choices" in found[0] and "'front'" in found[0]


def test_out_of_range_and_wrong_type_values_are_reported(ui, api, specs):
    node(ui, 12)["widgets_values"][0] = -5
    node(ui, 1)["widgets_values"][1] = "yes"
    found = messages(check_ui(ui, specs))
    assert any("noise_seed" in m and "-5 is below the minimum 0" in m for m in found)
    assert any("create_if_missing" in m and "expects true or false" in m for m in found)
    api["12"]["inputs"]["noise_seed"] = 2**64
    assert any("above the maximum" in m for m in messages(check_api(api, specs)))


def test_bad_control_after_generate_value_is_reported(ui, specs):
    node(ui, 12)["widgets_values"][1] = "sometimes"
    assert any("control_after_generate must be one of" in m for m in messages(check_ui(ui, specs)))


def test_mismatched_link_types_are_reported(ui, api, specs):
    # FlenwheelProject's summary (STRING) wired into Curate Sources' project socket.
    ui["links"][0] = [1, 1, 1, 3, 0, "STRING"]
    found = messages(check_ui(ui, specs))
    assert any("link 1" in m and "gives STRING" in m and "takes FLENWHEEL_PROJECT" in m for m in found)
    api["3"]["inputs"]["project"] = ["1", 1]
    assert any("gives STRING" in m for m in messages(check_api(api, specs)))


def test_wildcard_and_comma_separated_types_link():
    assert types_match("STRING", "*") and types_match("*", "IMAGE")
    assert types_match("IMAGE", "IMAGE,MASK") and types_match("INT,FLOAT", "FLOAT")
    assert not types_match("STRING", "FLENWHEEL_PROJECT")


def test_unconnected_required_socket_is_reported(ui, api, specs):
    ui["links"] = [link for link in ui["links"] if link[0] != 1]
    node(ui, 3)["inputs"][0]["link"] = None
    assert any("required input 'project'" in m for m in messages(check_ui(ui, specs)))
    del api["3"]["inputs"]["project"]
    assert any("required input 'project' is missing" in m for m in messages(check_api(api, specs)))


def test_api_values_where_links_belong_and_dangling_links(api, specs):
    api["3"]["inputs"]["project"] = "my_project"
    api["6"]["inputs"]["images"] = ["99", 0]
    found = messages(check_api(api, specs))
    assert any("must be connected to a FLENWHEEL_PROJECT output" in m for m in found)
    assert any("node 99, which is not in the prompt" in m for m in found)


def test_frontend_only_nodes_are_refused_in_api(api, specs):
    api["8"] = {"class_type": "Note", "inputs": {}}
    assert any("exists only in the UI" in m for m in messages(check_api(api, specs)))


def test_twin_drift_is_reported(ui, api, specs):
    api["9"]["inputs"]["batch_policy"] = "crop"
    api["1"]["_meta"]["title"] = "Project"
    del api["10"]
    found = messages(compare_twins(ui, api, specs))
    assert any('\'batch_policy\' is "pad" in the UI workflow but "crop" in the API twin' in m for m in found)
    assert any("titled 'Project'" in m for m in found)
    assert any("node 10 (SaveImage)" in m and "only in the UI workflow" in m for m in found)
    assert len(found) == 3


def test_changed_node_inputs_fail_a_workflow_that_was_not_updated(ui, api, monkeypatch):
    """A node gaining a widget shifts every positional widget value after it: the validator must notice."""
    from flenwheel.nodes.curate_node import FlenwheelCurateSources

    original = FlenwheelCurateSources.INPUT_TYPES()

    def changed(cls):
        inputs = copy.deepcopy(original)
        inputs["required"]["min_face_size"] = ("INT", {"default": 64, "min": 0, "tooltip": "new"})
        return inputs

    monkeypatch.setattr(FlenwheelCurateSources, "INPUT_TYPES", classmethod(changed))
    specs = known_specs()
    assert any(
        "has 6 widget values but FlenwheelCurateSources has 7 widgets" in m
        for m in messages(check_ui(ui, specs))
    )
    assert any("required input 'min_face_size' is missing" in m for m in messages(check_api(api, specs)))


def test_removed_input_is_reported(api, specs):
    api["9"]["inputs"]["legacy_option"] = 3
    assert messages(check_api(api, specs)) == [
        "node 9 'FLENwheel Load Dataset' (FlenwheelLoadDataset): "
        "input 'legacy_option' does not exist on this node"
    ]


def test_widget_layout_follows_the_frontend(specs):
    assert [s.name for s in specs["KSampler"].widget_slots] == [
        "seed",
        "control_after_generate",
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "denoise",
    ]
    assert [s.name for s in specs["LoadImage"].widget_slots] == ["image", "upload"]
    assert [s.name for s in specs["FlenwheelLoadDataset"].widget_slots] == [
        "stage",
        "version",
        "batch_policy",
        "label",
    ]


def test_file_choices_accept_any_file_name(api, specs):
    lora = specs["LoraLoader"].input("lora_name")
    assert lora.dynamic_choices == "loras"
    api["2"]["inputs"]["image"] = "some/other/photo.jpg"
    assert check_api(api, specs) == []
    api["2"]["inputs"]["image"] = ""
    assert any("'image'" in m for m in messages(check_api(api, specs)))


def test_folder_choice_lists_are_marked_dynamic_without_comfyui():
    class LoraPicker:
        RETURN_TYPES = ("STRING",)

        @classmethod
        def INPUT_TYPES(cls):
            from flenwheel.nodes._comfy import model_folder_files

            return {"required": {"lora": (["(none)"] + model_folder_files("loras"), {"tooltip": "LoRA"})}}

    info = describe("LoraPicker", LoraPicker)
    assert info["input"]["required"]["lora"] == [
        "COMBO",
        {"tooltip": "LoRA", "options": ["(none)"], "dynamic_choices": "loras"},
    ]
    assert "folder_paths" not in sys.modules
    spec = node_specs.parse_spec(info)
    assert node_specs.value_problem(spec.input("lora"), "char_v1.safetensors") is None


def test_malformed_files_get_a_clear_error(tmp_path, specs):
    broken = tmp_path / "broken.json"
    broken.write_text('{"nodes": [', encoding="utf-8")
    [problem] = check_file(broken, specs)
    assert "broken.json is not valid JSON" in str(problem)
    neither = tmp_path / "neither.json"
    neither.write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    assert "neither a UI workflow" in str(check_file(neither, specs)[0])


def test_folder_check_pairs_twins(tmp_path, ui, api, specs):
    (tmp_path / "api").mkdir()
    (tmp_path / "curate.json").write_text(json.dumps(ui), encoding="utf-8")
    (tmp_path / "api" / "curate.json").write_text(json.dumps(api), encoding="utf-8")
    (tmp_path / "lonely.json").write_text(json.dumps(ui), encoding="utf-8")
    (tmp_path / "api" / "orphan.json").write_text(json.dumps(api), encoding="utf-8")
    report = check_folder(tmp_path, specs)
    assert report["curate.json"] == [] and report["api/curate.json"] == []
    assert "has no API twin api/lonely.json" in str(report["lonely.json"][0])
    assert "without a UI original" in str(report["api/orphan.json"][0])


def test_convert_and_check_commands(tmp_path):
    from click.testing import CliRunner

    from flenwheel.cli import cli

    workflow = tmp_path / "curate.json"
    workflow.write_text((DATA / "curate_demo.json").read_text(encoding="utf-8"), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["comfy", "convert", str(workflow)])
    assert result.exit_code == 0 and f"wrote {tmp_path / 'api' / 'curate.json'}" in result.output
    twin = tmp_path / "api" / "curate.json"
    assert json.loads(twin.read_text()) == load_workflow(DATA / "api" / "curate_demo.json")
    assert "unchanged" in runner.invoke(cli, ["comfy", "convert", str(workflow)]).output
    result = runner.invoke(cli, ["comfy", "check", str(tmp_path)])
    assert result.exit_code == 0 and "2 workflow(s) checked, 0 with problems" in result.output
    twin.write_text(twin.read_text().replace('"pad"', '"crop"'), encoding="utf-8")
    result = runner.invoke(cli, ["comfy", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        "FAIL" in result.output and '\'batch_policy\' is "pad" in the UI workflow but "crop"' in result.output
    )


def test_check_on_a_folder_without_workflows_fails_and_says_so(tmp_path):
    from click.testing import CliRunner

    from flenwheel.cli import cli

    (tmp_path / "notes.txt").write_text("no workflows here")
    result = CliRunner().invoke(cli, ["comfy", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path} holds no workflow" in result.output


@pytest.mark.parametrize(
    ("frontend", "saved", "expected"),
    [
        # measured in headless Chromium: what each frontend saved for a PreviewAny and then queued
        (None, [], {"preview": ""}),
        ("1.27.10", [], {"preview": ""}),
        ("1.27.10", [None, None, True], {"preview": ""}),
        ("1.37.11", [], {"preview": "", "previewMode": False}),
        ("1.37.11", [None, None, False], {"preview": "", "previewMode": False}),
        ("1.37.11", [True], {"preview": "", "previewMode": True}),
        ("v1.40.2", [None, None, True], {"preview": "", "previewMode": True}),
        ("1.58.1", [None, None, True], {}),
        ("1.58.1", [], {}),
    ],
)
def test_the_converter_sends_what_each_frontend_adds_to_preview_any(ui, specs, frontend, saved, expected):
    """Frontend 1.37 added a previewMode toggle to PreviewAny (saved with the workflow, sent with the
    prompt); 1.58 sends neither. A workflow saved by any of them converts for any of them."""
    node(ui, 7)["widgets_values"] = saved
    converted = ui_to_api(ui, specs, frontend)
    assert converted["7"]["inputs"] == {"source": ["3", 2], **expected}
    assert check_ui(ui, specs) == []


def test_a_frontend_version_that_is_not_one_is_refused(ui, specs):
    with pytest.raises(WorkflowError, match="not a frontend version like 1.37.11"):
        ui_to_api(ui, specs, "latest")
