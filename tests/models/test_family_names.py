"""Every place a person names a base model accepts every registered family, and derives its options from schemas."""

from __future__ import annotations

import json
from typing import get_args

import pytest
from click.testing import CliRunner

from flenwheel.core.models.registry import accepted_names, families, family


def _cli(*args):
    from flenwheel.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_models_command_lists_every_family_with_role_hub_id_and_memory():
    result = _cli("models")
    assert result.exit_code == 0, result.output
    for entry in families():
        aliases = f" (also: {', '.join(entry.aliases)})" if entry.aliases else ""
        assert f"{entry.name}{aliases}: {entry.title}, {entry.role}" in result.output
        assert f"hub id: {entry.hub_id}" in result.output
        assert entry.memory.row() in result.output
    editors = json.loads(_cli("models", "--role", "editor", "--json").output)
    assert {e["role"] for e in editors} == {"editor"}
    assert editors[0]["name"] == "qwen-edit" and editors[0]["hub_id"] == "Qwen/Qwen-Image-Edit-2509"


def test_train_has_a_command_per_family_and_init_takes_aliases(project):
    listed = _cli("train", "--help").output
    assert all(f"  {entry.name} " in listed for entry in families())
    result = _cli("train", "init", "flux1-dev", project.root)
    assert result.exit_code == 1 and "no training images yet" in result.output
    result = _cli("train", "init", "sdxl", project.root)
    assert result.exit_code == 2 and "flux" in result.output and "qwen-edit" in result.output


def test_trainer_entry_point_accepts_every_name_and_lists_them_for_a_wrong_one(capsys, tmp_path):
    from flenwheel.trainers.__main__ import main

    with pytest.raises(SystemExit) as wrong:
        main(["sdxl", "--config", str(tmp_path / "cfg.yaml")])
    assert wrong.value.code == 2
    err = capsys.readouterr().err
    assert all(name in err for name in accepted_names())
    for name in accepted_names():
        assert main([name, "--config", str(tmp_path / "missing.yaml")]) == 1  # parsed; the config is missing


def test_trainer_config_takes_aliases_and_refuses_unknown_families():
    from flenwheel.trainers.config import ConfigError, parse_config

    base = {"model": "x/y", "dataset_path": "data", "output_path": "out"}
    assert parse_config({**base, "trainer": "flux1-dev"}).trainer == "flux"
    with pytest.raises(ConfigError, match="unknown model family 'sdxl'; known families: flux, qwen-edit"):
        parse_config({**base, "trainer": "sdxl"})


def test_turn_config_names_families_by_role():
    from flenwheel.core.turn.config import ModelsSection

    models = ModelsSection()
    assert (models.character_base, models.editor) == ("flux", "qwen-edit")
    assert models.flux == family("flux").hub_id and models.qwen_edit == family("qwen-edit").hub_id
    assert ModelsSection(character_base="flux1-dev", flux="/w/flux").flux == "/w/flux"
    with pytest.raises(ValueError, match="not a character model; use one of flux"):
        ModelsSection(character_base="qwen-edit")
    with pytest.raises(ValueError, match="unknown model family 'sdxl'"):
        ModelsSection(editor="sdxl")


def test_training_widgets_follow_the_family_defaults_and_the_config_schema():
    from flenwheel.nodes.train_node import FlenwheelTrainFluxLora, FlenwheelTrainQwenEditLora
    from flenwheel.trainers.config import TrainConfig

    flux = FlenwheelTrainFluxLora.INPUT_TYPES()["required"]
    qwen = FlenwheelTrainQwenEditLora.INPUT_TYPES()["required"]
    assert flux["max_train_steps"][1]["default"] == family("flux").training_defaults["max_train_steps"] == 1500
    assert qwen["max_train_steps"][1]["default"] == family("qwen-edit").training_defaults["max_train_steps"] == 1000
    assert qwen["base_model"][1]["default"] == "Qwen/Qwen-Image-Edit-2509"
    for key in ("optimizer", "quantize", "mixed_precision"):
        assert flux[key][0] == list(get_args(TrainConfig.model_fields[key].annotation)), key
    assert flux["seed"][1]["default"] == TrainConfig.model_fields["seed"].default
    # ComfyUI refuses to queue a FLOAT widget whose value is None: the optimiser's own step stands in
    assert flux["learning_rate"][1]["default"] == qwen["learning_rate"][1]["default"] == 1e-4
    assert flux["sample_prompts"][1]["default"].splitlines() == list(family("flux").sample_prompts)


def test_memory_widgets_and_options_follow_load_options():
    from flenwheel.core.models.pipelines import MEMORY_CHOICES, LoadOptions
    from flenwheel.nodes.flux_node import FlenwheelLoadFlux
    from flenwheel.nodes.qwen_edit_loader_node import FlenwheelQwenEditLoader

    defaults = LoadOptions()
    for node in (FlenwheelLoadFlux, FlenwheelQwenEditLoader):
        widgets = node.INPUT_TYPES()["required"]
        for name, choices in MEMORY_CHOICES.items():
            assert widgets[name][0] == list(choices) and widgets[name][1]["default"] == getattr(defaults, name)
        assert widgets["vae_tiling"][1]["default"] is defaults.vae_tiling
    rerun = _cli("triplets", "rerun", "--help").output
    assert "--quant, --quantize" in rerun and "--quant-text-encoder, --quantize-text-encoder" in rerun
