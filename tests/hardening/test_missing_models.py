"""Model files missing offline: the error names the model, where it was looked for and the fix."""

from __future__ import annotations

import shutil

import pytest

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.models.missing import hub_cache
from flenwheel.core.models.pipelines import load_pipeline


def test_a_hub_model_missing_offline_says_where_it_looked_and_how_to_fix_it():
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline("flux", "someorg/not-cached-model", dtype="fp32", device="cpu")
    text = str(caught.value)
    assert "stacktrace above" not in text
    assert "the flux model someorg/not-cached-model" in text
    assert f"hub cache {hub_cache()}" in text and "ComfyUI model folders" in text
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in text
    assert "hf download someorg/not-cached-model" in text and "local diffusers folder" in text


def test_a_local_folder_missing_a_component_names_the_folder(tiny_flux, tmp_path):
    broken = tmp_path / "flux_copy"
    shutil.copytree(tiny_flux, broken)
    shutil.rmtree(broken / "transformer")
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline("flux", str(broken), dtype="fp32", device="cpu")
    text = str(caught.value)
    assert "stacktrace above" not in text
    assert f"the folder {broken} (the path given)" in text and "model_index.json" in text
