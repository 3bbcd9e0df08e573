"""Regenerate comfy_tools/comfy_core_nodes.json: ComfyUI's own nodes as /object_info describes them.

The workflow validator checks core nodes (LoadImage, SaveImage, PreviewAny...) against this list,
so it runs without ComfyUI. Run it with the Python that runs ComfyUI, on the checkout to describe:

    /path/to/comfy-venv/bin/python scripts/comfy_core_nodes.py /path/to/ComfyUI

It loads nodes.py and the built-in comfy_extras (not the paid API nodes, not custom nodes), asks
every class for its inputs while model and input folders list marker files (so file choice lists
are stored as ``dynamic_choices`` rather than whatever files this machine has), and writes the
result sorted, so a ComfyUI update shows up as a readable diff.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "comfy_tools" / "comfy_core_nodes.json"


def load_object_info_module():
    """comfy_tools/object_info.py by path: ComfyUI's interpreter may not have the flenwheel package."""
    spec = importlib.util.spec_from_file_location("flenwheel_object_info", REPO / "comfy_tools" / "object_info.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_comfyui(comfyui_dir: Path):
    """Import ComfyUI's node registry with its built-in extras, as main.py does at start-up."""
    sys.path.insert(0, str(comfyui_dir))
    os.chdir(comfyui_dir)
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    # As in main.py: ComfyUI's utils package must be imported before comfy/ lands on sys.path
    # (a comfy module does that), or comfy/utils.py shadows it and server.py fails to import.
    import utils.extra_config  # noqa: F401

    import nodes

    failed = asyncio.run(nodes.init_builtin_extra_nodes())
    return nodes, sorted(failed or [])


def describe_all(nodes, object_info) -> dict[str, dict]:
    described = {}
    for name, cls in sorted(nodes.NODE_CLASS_MAPPINGS.items()):
        if getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes").startswith("custom_nodes"):
            continue
        fallback_name = nodes.NODE_DISPLAY_NAME_MAPPINGS.get(name)
        if hasattr(cls, "GET_NODE_INFO_V1"):
            with object_info.folder_markers():
                info = object_info.mark_dynamic_choices(object_info.json_safe(cls.GET_NODE_INFO_V1()))
            # The frontend titles a V3 node without a display name from the classic mapping.
            info["display_name"] = info.get("display_name") or fallback_name or name
        else:
            info = object_info.describe(name, cls, fallback_name)
        described[name] = info
    return described


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("comfyui_dir", type=Path, help="ComfyUI checkout (the folder holding main.py)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file to write")
    args = parser.parse_args()
    comfyui_dir = args.comfyui_dir.resolve()
    output = args.output.resolve()
    object_info = load_object_info_module()
    logging.disable(logging.WARNING)
    nodes, failed = load_comfyui(comfyui_dir)
    logging.disable(logging.NOTSET)
    version_file = comfyui_dir / "comfyui_version.py"
    version = version_file.read_text().split('"')[1] if version_file.exists() else "unknown"
    data = {
        "comfyui_version": version,
        "generated_by": "scripts/comfy_core_nodes.py",
        "extras_not_loaded": failed,
        "nodes": describe_all(nodes, object_info),
    }
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, output)
    print(
        f"{len(data['nodes'])} ComfyUI {version} nodes written to {output}"
        + (f" ({', '.join(failed)} not loadable here)" if failed else "")
    )


if __name__ == "__main__":
    main()
