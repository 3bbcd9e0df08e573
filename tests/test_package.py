"""The pack as ComfyUI and pip see it: registration with and without ComfyUI, node conventions, metadata."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import types
from pathlib import Path

import pytest
import tomllib

import flenwheel
from flenwheel import nodes

ROOT = Path(flenwheel.__file__).resolve().parent
FOUNDATION_NODES = {"FlenwheelProject", "FlenwheelLoadDataset", "FlenwheelCurateSources"}


def test_registers_nodes_without_comfyui():
    assert "comfy" not in sys.modules
    assert FOUNDATION_NODES <= set(flenwheel.NODE_CLASS_MAPPINGS)
    assert set(flenwheel.NODE_DISPLAY_NAME_MAPPINGS) == set(flenwheel.NODE_CLASS_MAPPINGS)
    assert flenwheel.WEB_DIRECTORY == "./web"


def _stub_comfyui(monkeypatch, tmp_path):
    """Just enough of ComfyUI's modules for the pack to import as ComfyUI would load it."""
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_output_directory = lambda: str(tmp_path)
    folder_paths.get_filename_list = lambda folder: []
    folder_paths.get_full_path_or_raise = lambda folder, name: str(tmp_path / name)
    comfy = types.ModuleType("comfy")
    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = lambda total, node_id=None: types.SimpleNamespace(update_absolute=lambda *a, **k: None)
    management = types.ModuleType("comfy.model_management")
    management.throw_exception_if_processing_interrupted = lambda: None
    management.processing_interrupted = lambda: False
    management.get_torch_device = lambda: "cpu"
    server = types.ModuleType("server")

    class PromptServer:
        instance = types.SimpleNamespace(send_sync=lambda *a, **k: None, routes=None, app=None)

    server.PromptServer = PromptServer
    for name, module in {"folder_paths": folder_paths, "comfy": comfy, "comfy.utils": utils,
                         "comfy.model_management": management, "server": server}.items():
        monkeypatch.setitem(sys.modules, name, module)


def test_loads_like_comfyui_loads_a_custom_node_folder(monkeypatch, tmp_path):
    _stub_comfyui(monkeypatch, tmp_path)
    spec = importlib.util.spec_from_file_location("FLENwheel_pack", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "FLENwheel_pack", module)
    spec.loader.exec_module(module)
    assert FOUNDATION_NODES <= set(module.NODE_CLASS_MAPPINGS)
    assert module.NODE_CLASS_MAPPINGS["FlenwheelProject"].__module__.startswith("FLENwheel_pack.nodes")
    for name in [n for n in sys.modules if n.startswith("FLENwheel_pack")]:
        monkeypatch.delitem(sys.modules, name)


def test_a_missing_face_recognition_leaves_every_other_node_registered(monkeypatch, caplog):
    """face_recognition itself is hidden; what the identity features then do is tests/hardening's
    test_missing_face_recognition.py."""
    from flenwheel.core.identity import faces as faces_module

    monkeypatch.setattr(faces_module, "_api", None)
    monkeypatch.setitem(sys.modules, "face_recognition", None)
    with caplog.at_level(logging.WARNING, logger="flenwheel"):
        classes, _ = nodes.load_nodes()
    assert set(flenwheel.NODE_CLASS_MAPPINGS) - {"FlenwheelFaceIdentityFilter"} <= set(classes)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) <= 1
    assert all("face_recognition is not installed" in w and "--no-deps face-recognition-ng" in w for w in warnings)


def test_a_broken_node_module_does_not_take_the_pack_down(monkeypatch, caplog):
    real_import = importlib.import_module

    def broken(name, *args):
        if name.endswith(".dataset_node"):
            raise RuntimeError("boom")
        return real_import(name, *args)

    monkeypatch.setattr(nodes.importlib, "import_module", broken)
    with caplog.at_level(logging.ERROR, logger="flenwheel"):
        classes, _ = nodes.load_nodes()
    assert "FlenwheelProject" in classes and "FlenwheelLoadDataset" not in classes
    assert "dataset_node nodes failed to load" in caplog.text


@pytest.mark.parametrize("name", sorted(flenwheel.NODE_CLASS_MAPPINGS))
def test_every_node_follows_the_conventions(name):
    node = flenwheel.NODE_CLASS_MAPPINGS[name]
    assert node.DESCRIPTION.strip(), "DESCRIPTION"
    assert node.CATEGORY.startswith("FLENwheel/")
    assert callable(getattr(node, node.FUNCTION))
    assert isinstance(node.RETURN_TYPES, tuple)
    inputs = node.INPUT_TYPES()
    for section in ("required", "optional"):
        for input_name, spec in inputs.get(section, {}).items():
            options = spec[1] if len(spec) > 1 else {}
            assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_every_package_folder_is_in_the_wheel():
    """setuptools installs only the packages pyproject lists (the root is mapped to ``flenwheel``), so a
    folder left off works from a checkout and is missing from ``pip install flenwheel``."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    product = ("cli", "comfy_tools", "core", "nodes", "trainers")
    found = {"flenwheel"} | {
        ".".join(("flenwheel", *init.parent.relative_to(ROOT).parts))
        for folder in product
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found == listed


def test_package_metadata_for_pip_comfy_registry_and_manager():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == "flenwheel" and "comfyui" not in project["name"].lower()
    assert project["scripts"]["flenwheel"] == "flenwheel.cli:main"
    assert {"test", "quant"} <= set(project["optional-dependencies"])
    assert any(dep.startswith("bitsandbytes") for dep in project["optional-dependencies"]["quant"])
    assert {"PublisherId", "DisplayName", "Icon"} <= set(pyproject["tool"]["comfy"])
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    packages = [line.split(">")[0].split("=")[0].strip().lower() for line in requirements if line and line[0] != "#"]
    assert "torch" not in packages and "torchvision" not in packages
    assert not any("==" in line for line in requirements if not line.startswith("#"))


def test_the_declared_comfyui_range_holds_both_versions_the_integration_suite_runs():
    """docs/comfyui-integration.md: tests/integration passes on 0.3.64 and on 0.12.1."""
    from packaging.specifiers import SpecifierSet

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    declared = SpecifierSet(pyproject["tool"]["comfy"]["requires-comfyui"])
    assert "0.3.64" in declared and "0.12.1" in declared and "0.3.63" not in declared
