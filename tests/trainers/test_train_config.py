"""Config validation: a typo or a wrong value fails at once, naming the key, the file and the fix."""

from __future__ import annotations

import pytest


def _write(tmp_path, text):
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = "model: {model}\ndataset_path: images\noutput_path: out\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("lora_rnk: 8\n", "unknown key 'lora_rnk' (did you mean 'lora_rank'?)"),
        ("learning_rate: fast\n", "learning_rate: Input should be a valid number"),
        ("lora_rank: 0\n", "lora_rank: Input should be greater than or equal to 1"),
        ("optimizer: sgd\n", "optimizer: Input should be 'adamw', 'adamw8bit' or 'prodigy'"),
        ("mixed_precision: fp8\n", "mixed_precision"),
        ("caption_dropout: 1.5\n", "caption_dropout"),
        ("resume: ''\n", "resume"),
        (
            "lr_scheduler: cosine\nlr_warmup_steps: 5000\n",
            "lr_warmup_steps must be smaller than max_train_steps",
        ),
        ("sample_prompts: [{prompt: a, controls: [x]}]\n", "unknown key 'sample_prompts.0.controls'"),
    ],
)
def test_bad_values_are_named(tmp_path, extra, message):
    from flenwheel.trainers.config import ConfigError, load_config

    path = _write(tmp_path, BASE.format(model="black-forest-labs/FLUX.1-dev") + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path, "flux")
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_required_keys_are_listed(tmp_path):
    from flenwheel.trainers.config import ConfigError, load_config

    with pytest.raises(
        ConfigError, match="missing required key 'model'.*missing required key 'dataset_path'"
    ):
        load_config(_write(tmp_path, "output_path: out\n"), "flux")


@pytest.mark.parametrize(
    "text, message",
    [
        ("model: [unclosed\n", "is not valid YAML"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_malformed_yaml(tmp_path, text, message):
    from flenwheel.trainers.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), "flux")


def test_trainer_kind_must_match(tmp_path):
    from flenwheel.trainers.config import ConfigError, load_config

    path = _write(tmp_path, "trainer: qwen-edit\n" + BASE.format(model="Qwen/Qwen-Image-Edit-2509"))
    with pytest.raises(ConfigError, match="flenwheel train qwen-edit"):
        load_config(path, "flux")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", "flux")


def test_relative_paths_resolve_against_the_config_folder(tmp_path, tiny_flux):
    from flenwheel.trainers.config import load_config

    (tmp_path / "images").mkdir()
    config = load_config(_write(tmp_path, BASE.format(model=tiny_flux) + "sample_prompts: [a, b]\n"), "flux")
    assert config.dataset_path == [str(tmp_path / "images")]
    assert config.output_path == str(tmp_path / "out")
    assert config.model == str(tiny_flux)
    assert [s.prompt for s in config.sample_prompts] == ["a", "b"]
    hub = load_config(_write(tmp_path, BASE.format(model="black-forest-labs/FLUX.1-dev")), "flux")
    assert hub.model == "black-forest-labs/FLUX.1-dev" and hub.lora_rank == 16 and hub.alpha == 16.0


def test_saved_config_round_trips(tmp_path, flux_config, config_file):
    from flenwheel.trainers.config import load_config

    config = flux_config(sample_prompts=["x", {"prompt": "y", "control_paths": [str(tmp_path / "a.png")]}])
    again = load_config(config_file(config), "flux")
    assert again == config


def test_cli_reports_config_errors_with_exit_1(tmp_path):
    from click.testing import CliRunner

    from flenwheel.cli import cli

    path = _write(tmp_path, BASE.format(model="x/y") + "lora_rnk: 8\n")
    result = CliRunner().invoke(cli, ["train", "flux", "--config", str(path)])
    assert result.exit_code == 1
    assert "did you mean 'lora_rank'" in result.output


def test_optimizers_that_cannot_run_here_fail_before_loading(flux_config, train_quietly, monkeypatch):
    import sys

    from flenwheel.core.data.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "prodigyopt", None)
    with pytest.raises(MissingDependencyError, match="pip install prodigyopt"):
        train_quietly(flux_config(optimizer="prodigy"))
    with pytest.raises(MissingDependencyError, match="adamw8bit needs an NVIDIA GPU"):
        train_quietly(flux_config(optimizer="adamw8bit"))


def test_nf4_without_a_gpu_is_a_clear_error(flux_config, train_quietly):
    from flenwheel.core.data.errors import FlenwheelError

    with pytest.raises(FlenwheelError, match="quantize: nf4 needs an NVIDIA GPU"):
        train_quietly(flux_config(quantize="nf4"))


def test_cli_training_errors_are_readable_on_stderr(flux_config, config_file, tmp_path, capfd):
    from flenwheel.cli import main

    path = config_file(flux_config(dataset_path=str(tmp_path / "nowhere")))
    with pytest.raises(SystemExit) as info:
        main(["train", "flux", "--config", str(path)])
    out, err = capfd.readouterr()
    assert info.value.code == 1
    assert '"event": "error"' in out and "[flenwheel-train] error: dataset" in err and "does not exist" in err


def test_prodigy_without_a_learning_rate_trains_at_one_and_a_small_one_is_warned(
    flux_config, train_quietly, monkeypatch, tmp_path, capsys
):
    """Prodigy multiplies its own step estimate by lr: at Adam's 1e-4 it would barely train."""
    import sys
    from types import SimpleNamespace

    import torch

    from flenwheel.trainers.config import parse_config

    assert flux_config(learning_rate=None).learning_rate == 1e-4
    assert flux_config(learning_rate=None, optimizer="prodigy").learning_rate == 1.0
    assert flux_config(learning_rate=0.5, optimizer="prodigy").learning_rate == 0.5
    written = parse_config({"model": "x/y", "dataset_path": "d", "output_path": "o", "optimizer": "prodigy"})
    assert "learning_rate: 1.0" in written.to_yaml()
    seen = []
    capsys.readouterr()

    def prodigy(params, lr, betas, weight_decay, **_):
        seen.append(lr)
        return torch.optim.AdamW(params, lr=1e-3, betas=betas, weight_decay=weight_decay)

    monkeypatch.setitem(sys.modules, "prodigyopt", SimpleNamespace(Prodigy=prodigy))
    train_quietly(flux_config(learning_rate=None, optimizer="prodigy", max_train_steps=1,
                                             output_path=str(tmp_path / "unset")))
    assert seen == [1.0]
    assert "warning: optimizer prodigy" not in capsys.readouterr().err
    train_quietly(flux_config(learning_rate=1e-4, optimizer="prodigy", max_train_steps=1,
                                             output_path=str(tmp_path / "small")))
    assert seen == [1.0, 1e-4]
    assert "warning: optimizer prodigy with learning_rate 0.0001" in capsys.readouterr().err
