"""docs/nodes.md is generated from the nodes themselves and must be kept in sync."""

from __future__ import annotations

from pathlib import Path

import flenwheel
from flenwheel.comfy_tools.dev.node_reference import portable, render, with_summary
from flenwheel.comfy_tools.node_specs import parse_spec

DOC = Path(__file__).resolve().parent.parent / "docs" / "nodes.md"
README = Path(__file__).resolve().parent.parent / "README.md"


def test_docs_nodes_md_is_up_to_date():
    assert DOC.exists(), "docs/nodes.md is missing: run `python scripts/node_reference.py`"
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/nodes.md is stale (a node's description, inputs or outputs changed): "
        "run `python scripts/node_reference.py` and commit the result"
    )


def test_readme_node_table_is_up_to_date_and_lists_every_node():
    readme = README.read_text(encoding="utf-8")
    assert readme == with_summary(readme), (
        "the README's node table is stale: run `python scripts/node_reference.py` and commit the result"
    )
    for name in flenwheel.NODE_DISPLAY_NAME_MAPPINGS.values():
        assert f"| [{name}](docs/nodes.md#" in readme


def test_reference_carries_every_description_tooltip_and_output_name():
    text = render()
    flat = " ".join(text.split())
    for name, cls in flenwheel.NODE_CLASS_MAPPINGS.items():
        assert f"### {flenwheel.NODE_DISPLAY_NAME_MAPPINGS[name]}" in text and f"`{name}`" in text
        assert " ".join(portable(cls.DESCRIPTION).split()) in flat
        for section_name, section in cls.INPUT_TYPES().items():
            if section_name == "hidden":
                continue
            for input_name, spec in section.items():
                options = spec[1] if len(spec) > 1 else {}
                assert "tooltip" in options, f"{name}.{input_name} has no tooltip"
                assert f"| {input_name}" in text and options["tooltip"].replace("|", "\\|") in text
        for output_name, tooltip in zip(cls.RETURN_NAMES, cls.OUTPUT_TOOLTIPS, strict=True):
            assert f"| {output_name} |" in text and tooltip in text


def test_ranges_file_choices_and_table_safety():
    spec = parse_spec(
        {
            "name": "Probe",
            "display_name": "Probe | Node",
            "category": "FLENwheel/test",
            "description": "Line one\nline two",
            "input": {
                "required": {
                    "steps": [
                        "INT",
                        {"default": 20, "min": 1, "max": 200, "step": 1, "tooltip": "Steps | count"},
                    ],
                    "lora": [
                        "COMBO",
                        {"options": ["(none)"], "dynamic_choices": "loras", "tooltip": "LoRA file"},
                    ],
                }
            },
            "output": ["IMAGE"],
            "output_name": ["images"],
            "output_tooltips": ["a|b"],
        }
    )
    text = render({"Probe": spec})
    assert "| steps | `INT` | `20` | 1 to 200, step 1 | Steps \\| count |" in text
    assert "`(none)` or a file from ComfyUI's `loras` folder" in text
    assert "| images | `IMAGE` | a\\|b |" in text
