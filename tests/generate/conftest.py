"""Fixtures for step 1.5 (generation): the tiny FLUX loaded once, random character LoRAs v1/v2, a project."""

from __future__ import annotations

import shutil

import pytest

#: Render settings that keep a tiny-model image well under a second on a busy 2-core machine.
TINY_RUN = {"width": 32, "height": 32, "steps": 2}


@pytest.fixture(scope="session")
def tiny_loras(tiny_flux, tmp_path_factory) -> dict:
    """Two different random character LoRAs for the tiny FLUX (trainer layout, diffusers/PEFT keys)."""
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    folder = tmp_path_factory.mktemp("loras")
    return {
        v: make_tiny_lora(tiny_flux, folder / f"char_lora_{v}.safetensors", seed=seed)
        for v, seed in (("v1", 1), ("v2", 2))
    }


@pytest.fixture(scope="session")
def flux(tiny_flux):
    """The tiny FLUX pipeline in fp32 on the CPU, shared: every test asks for its LoRAs through a handle."""
    from flenwheel.core.models.flux_single_file import load_flux
    from flenwheel.core.models.pipelines import LoadOptions

    return load_flux(str(tiny_flux), options=LoadOptions(dtype="fp32", device="cpu"))


@pytest.fixture
def lora_project(project, tiny_loras):
    """A project whose trainer has written char_v1 and char_v2."""
    for version, path in tiny_loras.items():
        folder = project.flux_lora_dir(version)
        folder.mkdir(parents=True)
        shutil.copy(path, folder / f"char_lora_{version}.safetensors")
    return project


@pytest.fixture
def tiny_run() -> dict:
    return dict(TINY_RUN)
