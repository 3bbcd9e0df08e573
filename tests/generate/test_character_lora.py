"""LoRA references: char_vN / vN / latest in the project, paths, ComfyUI's loras folder."""

from __future__ import annotations

import pytest

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.models.character_lora import lora_version_of, parse_lora_ref, resolve_lora


def test_project_versions_paths_and_lookup(lora_project, tiny_loras, tmp_path):
    v2 = lora_project.flux_lora_dir("v2") / "char_lora_v2.safetensors"
    assert resolve_lora("latest", lora_project) == v2 == resolve_lora("v2", lora_project)
    spec = parse_lora_ref("char_v1:0.75", lora_project)
    assert spec.strength == 0.75 and spec.path.endswith("char_v1/char_lora_v1.safetensors")
    assert lora_version_of(spec.path) == "char_v1" and lora_version_of(tiny_loras["v1"]) is None
    assert resolve_lora(str(tiny_loras["v1"])) == tiny_loras["v1"].resolve()
    assert (
        resolve_lora("film.safetensors", lookup=lambda name: str(tiny_loras["v2"]))
        == tiny_loras["v2"].resolve()
    )
    with pytest.raises(ModelLoadError, match="needs a project"):
        resolve_lora("char_v1")
    with pytest.raises(ModelLoadError, match="ComfyUI's loras folder"):
        resolve_lora("film.safetensors", lookup=lambda name: None)


def test_a_project_without_a_trained_lora(project):
    with pytest.raises(ModelLoadError, match="no trained character LoRA yet"):
        resolve_lora("latest", project)
    project.flux_lora_dir("v1").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="trained versions: none.*checkpoint file"):
        resolve_lora("char_v1", project)
