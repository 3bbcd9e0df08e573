"""Node classes described exactly as ComfyUI's ``GET /object_info`` describes them.

One description format serves everything that reasons about graphs: the workflow validator, the
UI-to-API converter, the node reference and the checked-in list of ComfyUI's own nodes. Choice
lists filled from the user's model or input folders cannot be known ahead of time, so the class is
asked for its inputs while ``folder_paths`` hands out marker file names; a choice list that comes
back holding markers is recorded as ``dynamic_choices`` (the folder) instead of the files found.

This module uses the standard library only, so ``scripts/comfy_core_nodes.py`` can load it by
path inside a ComfyUI checkout where the ``flenwheel`` package is not importable.
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARK = "\u2063flenwheel-folder\u2063"


def node_info(name: str, cls: type, display_name: str | None = None) -> dict[str, Any]:
    """The /object_info entry of a classic node class (the same keys and defaults ComfyUI uses)."""
    inputs = cls.INPUT_TYPES()
    returns = list(cls.RETURN_TYPES)
    info: dict[str, Any] = {
        "input": inputs,
        "input_order": {section: list(entries) for section, entries in inputs.items()},
        "output": returns,
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(returns))),
        "output_name": list(getattr(cls, "RETURN_NAMES", returns)),
        "name": name,
        "display_name": display_name or name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "category": getattr(cls, "CATEGORY", "sd"),
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    for flag in ("DEPRECATED", "EXPERIMENTAL"):
        if getattr(cls, flag, False):
            info[flag.lower()] = True
    if hasattr(cls, "API_NODE"):
        info["api_node"] = cls.API_NODE
    return json_safe(info)


def json_safe(value: Any) -> Any:
    """Tuples become lists and anything JSON cannot hold becomes its string, as the server would send."""
    return json.loads(json.dumps(value, default=str))


def mark_dynamic_choices(info: dict[str, Any]) -> dict[str, Any]:
    """Replace folder-filled choice lists by ``["COMBO", {"options": static, "dynamic_choices": folder}]``."""
    for section, entries in info.get("input", {}).items():
        if section == "hidden":
            continue
        for input_name, spec in entries.items():
            kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
            choices = kind if isinstance(kind, list) else options.get("options") if kind == "COMBO" else None
            if not isinstance(choices, list):
                continue
            folders = sorted({c.split(MARK)[1] for c in choices if isinstance(c, str) and MARK in c})
            if folders:
                static = [c for c in choices if not (isinstance(c, str) and MARK in c)]
                entries[input_name] = [
                    "COMBO",
                    {**options, "options": static, "dynamic_choices": ",".join(folders)},
                ]
    return info


def _marker_list(folder: str) -> list[str]:
    return [f"{MARK}{folder}{MARK}file.safetensors"]


@contextmanager
def folder_markers() -> Iterator[None]:
    """Make ``folder_paths`` (ComfyUI's, or a stand-in outside ComfyUI) list marker files only."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for kind in ("input", "output", "temp"):
            folder = Path(tmp, kind)
            folder.mkdir()
            (folder / f"{MARK}{kind}{MARK}image.png").write_bytes(b"")
            (folder / f"{MARK}{kind}{MARK}subfolder").mkdir()
            dirs[kind] = str(folder)
        patches = {
            "get_filename_list": _marker_list,
            "get_input_directory": lambda: dirs["input"],
            "get_output_directory": lambda: dirs["output"],
            "get_temp_directory": lambda: dirs["temp"],
        }
        real = sys.modules.get("folder_paths")
        module = real if real is not None else types.ModuleType("folder_paths")
        saved = {key: getattr(module, key) for key in patches if hasattr(module, key)}
        for key, value in patches.items():
            setattr(module, key, value)
        if real is None:
            sys.modules["folder_paths"] = module
        try:
            yield
        finally:
            for key in patches:
                if key in saved:
                    setattr(module, key, saved[key])
                else:
                    delattr(module, key)
            if real is None:
                sys.modules.pop("folder_paths", None)


def describe(name: str, cls: type, display_name: str | None = None) -> dict[str, Any]:
    """``node_info`` with folder-filled choice lists marked dynamic.

    A class whose INPUT_TYPES needs more of ComfyUI than the stand-in offers is described
    without markers, as it would be outside ComfyUI.
    """
    try:
        with folder_markers():
            return mark_dynamic_choices(node_info(name, cls, display_name))
    except (AttributeError, ImportError):
        return node_info(name, cls, display_name)
