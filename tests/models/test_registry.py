"""The model-family registry: lookups, errors, and that every consumer reads it instead of spelling names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flenwheel.core.models.registry import (
    CHARACTER,
    EDITOR,
    UnknownFamilyError,
    accepted_names,
    default_family,
    families,
    family,
    family_names,
    resolve,
)

PACK = Path(__file__).resolve().parents[2]
#: product code that may spell a family name, and why
ALLOWED_FILES = {
    "core/models/registry.py": "the registry itself",
    "trainers/families": "the per-family trainer adapters",
    "comfy_tools/dev/workflow_templates.py": "graph node ids and the 'flux' socket of the shipped templates",
    "scripts/screenshots.py": "the Training tab's own event kind, sent to the page to draw a sample card",
    "comfy_tools/dev/native_templates.py": "ComfyUI's own DualCLIPLoader type value 'flux' in the native templates",
}
#: node lines where 'flux' is the name of the FLUX pipeline socket, not a family key
SOCKET_LINE = re.compile(r"RETURN_NAMES = |: FLUX_INPUT,")


def test_both_seed_families_resolve_by_name_and_alias():
    flux, qwen = family("flux"), family("qwen-edit")
    assert (flux.role, flux.hub_id, flux.pipeline_class) == (
        CHARACTER, "black-forest-labs/FLUX.1-dev", "FluxPipeline")
    assert (qwen.role, qwen.hub_id, qwen.pipeline_class) == (
        EDITOR, "Qwen/Qwen-Image-Edit-2509", "QwenImageEditPlusPipeline")
    assert family("qwen-edit-2509") is qwen and family("flux1-dev") is flux
    assert family_names()[:2] == ("flux", "qwen-edit")
    assert set(accepted_names()) >= {"flux", "qwen-edit", "flux1-dev", "qwen-edit-2509"}


def test_roles_and_defaults():
    assert families(CHARACTER)[0].name == "flux" and families(EDITOR)[0].name == "qwen-edit"
    assert {f.name for f in (*families(CHARACTER), *families(EDITOR))} == set(family_names())
    assert all(f.role == CHARACTER for f in families(CHARACTER)) and all(f.role == EDITOR for f in families(EDITOR))
    assert default_family(CHARACTER).name == "flux" and default_family(EDITOR).trains_on_triplets
    with pytest.raises(UnknownFamilyError, match="unknown role"):
        families("painter")


def test_unknown_family_lists_the_known_ones():
    known = ", ".join(family_names())
    with pytest.raises(UnknownFamilyError, match=re.escape(f"unknown model family 'sdxl'; known families: {known}")):
        family("sdxl")
    assert known.startswith("flux, qwen-edit")


def test_lora_layout_is_the_seed_contract(tmp_path):
    flux, qwen = family("flux").lora, family("qwen-edit").lora
    assert flux.version_folder(tmp_path, "v2") == tmp_path / "models/flux_lora/char_v2"
    assert flux.file_name("v2") == "char_lora_v2.safetensors"
    assert qwen.version_folder(tmp_path, "v1") == tmp_path / "models/qwen_lora/v1"
    assert qwen.file_name("v1") == "qwen_char_lora_v1.safetensors"
    assert (flux.project_key, qwen.project_key) == ("flux_lora", "qwen_lora")


def test_adapters_and_tiny_builders_resolve_to_real_code():
    from flenwheel.trainers.adapter import ModelAdapter

    for entry in families():
        assert issubclass(resolve(entry.trainer_adapter), ModelAdapter), entry.name
        assert callable(resolve(entry.tiny_builder)), entry.name
        assert entry.training_defaults["max_train_steps"] > 0
        assert "B transformer" in entry.memory.row()


def test_training_defaults_are_valid_trainer_config_keys():
    from flenwheel.trainers.config import TrainConfig

    for entry in families():
        assert set(entry.training_defaults) <= set(TrainConfig.model_fields), entry.name


PRODUCT = ("cli", "comfy_tools", "core", "nodes", "trainers", "scripts")


def _product_files():
    paths = [PACK / "__init__.py", PACK / "__main__.py", *(p for top in PRODUCT for p in (PACK / top).rglob("*.py"))]
    for path in sorted(paths):
        relative = path.relative_to(PACK).as_posix()
        if any(relative == allowed or relative.startswith(f"{allowed}/") for allowed in ALLOWED_FILES):
            continue
        yield relative, path


def _offending(relative: str, text: str) -> list[str]:
    """Lines of one file that spell a family name (or alias) as a quoted string."""
    names = "|".join(re.escape(name) for name in accepted_names())
    quoted = re.compile(rf"""["']({names})["']""")
    return [f"{relative}:{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), 1)
            if quoted.search(line) and not (relative.startswith("nodes/") and SOCKET_LINE.search(line))]


def test_no_product_file_spells_a_family_name():
    found = [hit for relative, path in _product_files() for hit in _offending(relative, path.read_text("utf-8"))]
    assert not found, "ask core.models.registry instead of spelling a family name:\n" + "\n".join(found)


def test_the_name_check_sees_a_dispatch_and_spares_a_socket():
    assert _offending("core/x.py", 'if kind == "qwen-edit":\n    pass')
    assert _offending("cli/x.py", "choices=['flux1-dev']")
    assert _offending("nodes/x.py", '    KIND = "flux"')
    assert not _offending("nodes/x.py", '    RETURN_NAMES = ("flux", "lora")\n    "flux": FLUX_INPUT,')
