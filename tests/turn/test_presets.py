"""Memory presets per card: init/print-config write them, run accepts them, the README shows the same table."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.models import registry
from flenwheel.core.models.pipelines import MEMORY_CHOICES
from flenwheel.core.models.registry import CHARACTER, EDITOR, GPU_CARDS, default_family, families
from flenwheel.core.turn.config import load_turn_config
from flenwheel.core.turn.presets import preset_config, preset_row, preset_yaml, row_status
from flenwheel.trainers.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "scripts"))
import readme_sections  # noqa: E402


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _readme_block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"<!-- {name}:start")
    return text[text.index("-->", start) + 4:text.index(f"<!-- {name}:end -->")]


def _readme_preset_row(gpu_gb: int) -> list[str]:
    for line in _readme_block("preset-table").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == f"{gpu_gb} GB":
            return cells[1:]
    raise AssertionError(f"README's preset table has no {gpu_gb} GB row")


@pytest.mark.parametrize("gpu_gb", GPU_CARDS)
def test_init_gpu_writes_a_config_run_accepts_whose_memory_options_equal_the_readme_row(tmp_path, gpu_gb):
    project = tmp_path / "P"
    result = _invoke("init", str(project), "--gpu", str(gpu_gb))
    assert result.exit_code == 0, result.output
    assert f"turn config for a {gpu_gb} GB GPU" in result.output
    config = load_turn_config(project / "turn.yaml")  # what `flenwheel run --config` reads first
    assert preset_row(config.model_dump()) == _readme_preset_row(gpu_gb)
    for overrides in (config.train.overrides, config.editor.overrides):  # the trainer's own schema takes them
        TrainConfig.model_validate({"model": "m", "dataset_path": "d", "output_path": "o", **overrides})


def test_the_24_gb_preset_has_the_tables_values():
    text = (preset_yaml(24))
    config = yaml.safe_load(text)
    assert config["models"]["quantize"] == "fp8" and config["models"]["offload"] == "group"
    assert config["train"]["overrides"]["quantize"] == "fp8" and config["editor"]["enabled"] is True
    assert config["editor"]["overrides"]["optimizer"] == "adamw8bit"
    assert config["editor"]["overrides"]["blocks_to_swap"] == 16 and config["editor"]["overrides"]["quantize"] == "fp8"


def test_every_key_a_preset_writes_is_commented():
    for gpu_gb in GPU_CARDS:
        for line in preset_yaml(gpu_gb).splitlines():
            assert line.lstrip().startswith("#") or re.search(r"\S\s+# \w", line), f"{gpu_gb} GB: uncommented {line!r}"


def test_the_shared_load_options_take_the_more_frugal_family_row():
    base, edit = default_family(CHARACTER), default_family(EDITOR)
    assert base.memory.preset(24).load.offload == "model" and edit.memory.preset(24).load.offload == "group"
    assert not base.memory.preset(12).load.vae_tiling and edit.memory.preset(12).load.vae_tiling
    assert preset_config(24)["models"]["offload"] == "group" and preset_config(12)["models"]["vae_tiling"]


def test_an_editor_that_cannot_train_on_the_card_turns_the_editor_flywheel_off_and_says_so(monkeypatch):
    editor_memory = default_family(EDITOR).memory
    original = type(editor_memory).preset

    def without_training(self, gpu_gb):
        row = original(self, gpu_gb)
        return dataclasses.replace(row, train=None) if self is editor_memory else row

    monkeypatch.setattr(type(editor_memory), "preset", without_training)
    text = preset_yaml(12)
    assert yaml.safe_load(text)["editor"] == {"enabled": False}
    assert "fits no trainer option on a 12 GB card" in text


def test_print_config_needs_no_project_and_prints_the_preset():
    result = _invoke("run", "--print-config", "--gpu", "16")
    assert result.exit_code == 0, result.output
    assert result.output == preset_yaml(16)
    assert _invoke("run", "--print-config").exit_code == 0
    missing = _invoke("run")
    assert missing.exit_code == 2 and "Missing argument 'PROJECT'" in missing.output


def test_a_card_without_a_preset_is_refused_naming_the_cards():
    result = _invoke("init", "P", "--gpu", "10")
    assert result.exit_code == 2 and "12" in result.output and "80" in result.output


def test_every_family_has_a_row_per_card_with_valid_values():
    for entry in families():
        assert [row.gpu_gb for row in entry.memory.presets] == list(GPU_CARDS), entry.name
        for row in entry.memory.presets:
            for key, value in row.load.options().items():
                assert key == "vae_tiling" or value in MEMORY_CHOICES[key], (entry.name, row.gpu_gb, key)
            if row.train:
                TrainConfig.model_validate({"model": "m", "dataset_path": "d", "output_path": "o",
                                            **row.train.options()})
        assert entry.role == EDITOR or all(row.train for row in entry.memory.presets), entry.name


def test_streaming_rows_use_fp8_with_group_offload_or_block_swap_within_the_familys_maximum():
    """Small cards stream weights: fp8 storage with group offload (inference) or blocks_to_swap (training),
    never above the family's maximum, and never with NF4 (4-bit weights are not moved block by block)."""
    streamed = 0
    for entry in families():
        for row in entry.memory.presets:
            if row.load.offload == "group":
                assert row.load.quantize != "nf4" and row.load.quantize_text_encoder != "nf4", (entry.name, row.gpu_gb)
                streamed += 1
            if row.train and row.train.blocks_to_swap:
                assert row.train.quantize == "fp8", (entry.name, row.gpu_gb)
                assert row.train.blocks_to_swap <= entry.max_blocks_to_swap, (entry.name, row.gpu_gb)
                streamed += 1
    assert streamed >= 6


def test_a_measured_figure_replaces_the_estimate(tmp_path, monkeypatch):
    entry = default_family(CHARACTER)
    row = entry.memory.preset(24)
    assert row_status(entry, row) == "load estimate; train estimate"
    measured = tmp_path / "memory_measured.json"
    measured.write_text(json.dumps({"format": 1, "figures": [
        {"family": entry.name, "stage": "train", "options": row.train.options(), "peak_gib": 18.4,
         "seconds": 2.5, "unit": "s/step", "device": "NVIDIA H100"}]}))
    monkeypatch.setattr(registry, "MEASURED_FILE", measured)
    assert row_status(entry, row) == "load estimate; train measured 18.4 GiB peak, 2.50 s/step on NVIDIA H100 (fits)"
    assert "train measured 18.4 GiB" in preset_yaml(24)


def test_the_readme_sections_are_generated_from_the_registry_and_the_cli():
    text = README.read_text(encoding="utf-8")
    for name, fresh in readme_sections.sections().items():
        assert _readme_block(name) == fresh, f"README's {name} is stale: python scripts/readme_sections.py"
    assert readme_sections.replaced(text, "command-list", readme_sections.sections()["command-list"]) == text


def test_the_readme_command_list_equals_flenwheel_help():
    help_text = _invoke("--help").output
    listed = help_text.split("Commands:")[1]
    commands = {line.split()[0] for line in listed.splitlines() if line.startswith("  ") and line.split()}
    in_readme = {re.match(r"\| `flenwheel ([\w-]+)", line).group(1)
                 for line in _readme_block("command-list").splitlines() if line.startswith("| `flenwheel")}
    assert in_readme == commands
    assert {"status", "items", "run", "init"} <= in_readme


def test_other_families_take_their_own_rows(tmp_path):
    klein = families(CHARACTER)[-1] if len(families(CHARACTER)) > 1 else None
    if klein is None:
        pytest.skip("only one character family is registered")
    result = _invoke("run", "--print-config", "--gpu", "12", "--character-base", klein.name)
    config = yaml.safe_load(result.output)
    assert config["models"]["character_base"] == klein.name and config["models"]["flux"] == klein.hub_id
    assert config["train"]["overrides"] == klein.memory.preset(12).train.options()
    refused = _invoke("init", str(tmp_path / "Q"), "--editor", default_family(EDITOR).name)
    assert refused.exit_code == 2 and "add --gpu N" in refused.output and not (tmp_path / "Q").exists()


def test_init_without_a_name_takes_the_folder_name(tmp_path):
    result = _invoke("init", str(tmp_path / "Ada"))
    assert result.exit_code == 0 and "created project 'Ada'" in result.output
    assert not (tmp_path / "Ada" / "turn.yaml").exists()


def test_an_existing_turn_yaml_is_never_overwritten_and_nothing_is_created(tmp_path):
    folder = tmp_path / "Ada"
    folder.mkdir()
    (folder / "turn.yaml").write_text("mine: true\n")
    result = _invoke("init", str(folder), "--gpu", "24")
    assert result.exit_code == 1 and "exists; not overwritten" in result.output
    assert (folder / "turn.yaml").read_text() == "mine: true\n" and not (folder / "flenwheel.json").exists()
