"""A whole tiny turn of both flywheels with FLUX.2 [klein] as the character base and Qwen-Image-Edit-2511 as
the editor."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_turn_runs_with_klein_and_2511_named_in_the_config(tmp_path, tiny_flux2_klein, tiny_qwen_edit_2511):
    import torch

    from flenwheel.core.data.project import Project
    from flenwheel.core.turn.config import TurnConfig
    from flenwheel.core.turn.demo import demo_config
    from flenwheel.core.turn.demo_photos import packaged_character
    from flenwheel.core.turn.loop import run_flywheel
    from flenwheel.trainers.lora_io import read_metadata

    character = packaged_character(tmp_path / "photos")
    raw = demo_config({"flux": tiny_flux2_klein, "qwen-edit": tiny_qwen_edit_2511}, character).model_dump(mode="json")
    raw["models"].update(character_base="flux2-klein", editor="qwen-edit-2511")
    raw["sources"]["add"] = raw["sources"]["add"][:4]
    raw["enrich"]["per_source"] = 2
    raw["editor"]["min_triplets"] = 1  # a handful of auto-reviewed edits: train the 2511 editor on what there is
    raw["train"]["overrides"].update(max_train_steps=4, save_every=4)
    raw["iterate"]["train_next"] = False
    config = TurnConfig.model_validate(raw)
    project = Project.init(tmp_path / "p", name="Ada")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = run_flywheel(project, config, auto=True, log=lambda line: None, max_turns=1)
    finally:
        torch.set_num_threads(threads)
    lora = project.root / "models/flux_lora/char_v1/char_lora_v1.safetensors"
    assert lora.is_file() and read_metadata(lora)["flenwheel.trainer"] == "flux2-klein"
    enriched = project.dataset("enriched").records
    assert enriched and all(r.model == str(tiny_qwen_edit_2511) for r in enriched)
    assert project.dataset("synthetic").records
    assert any(key.startswith("model card") for key in run.turns[0].reports)
    editors = list((project.root / "models/qwen_lora").glob("v*/*.safetensors"))
    assert editors and read_metadata(editors[0])["flenwheel.trainer"] == "qwen-edit-2511"
