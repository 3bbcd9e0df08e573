"""The turn config: defaults, validation messages, relative paths, and --print-config round trip."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.turn.config import TurnConfig, load_turn_config


def test_defaults_are_the_real_models_and_page_review():
    config = load_turn_config(None)
    assert config.models.flux == "black-forest-labs/FLUX.1-dev"
    assert config.models.qwen_edit == "Qwen/Qwen-Image-Edit-2509"
    assert config.review.mode == "wait" and config.review.host == "127.0.0.1"
    assert config.filter.send_to_review == "passed"


def test_a_typo_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "turn.yaml"
    path.write_text("enrich:\n  per_sorce: 3\n")
    with pytest.raises(FlenwheelError, match="enrich.per_sorce: Extra inputs are not permitted"):
        load_turn_config(path)
    path.write_text("review:\n  mode: maybe\n")
    with pytest.raises(FlenwheelError, match="review.mode"):
        load_turn_config(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FlenwheelError, match="does not exist"):
        load_turn_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("models: [unclosed")
    with pytest.raises(FlenwheelError, match="cannot be read"):
        load_turn_config(tmp_path / "bad.yaml")


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "turn.yaml"
    path.write_text("sources:\n  add:\n    - path: photos/a.jpg\nreview:\n  mode: file\n  decisions: d.yaml\n")
    (tmp_path / "cfg" / "d.yaml").write_text("{}\n")
    config = load_turn_config(path)
    assert config.sources.add[0].path == str(tmp_path / "cfg" / "photos" / "a.jpg")
    assert config.review.decisions == str(tmp_path / "cfg" / "d.yaml")


def test_a_missing_decisions_file_or_card_is_named_before_anything_runs(tmp_path):
    path = tmp_path / "turn.yaml"
    path.write_text("review:\n  mode: file\n  decisions: gone.yaml\nbenchmark:\n  card_files: [card.yaml]\n")
    with pytest.raises(FlenwheelError, match=r"benchmark.card_files\[0\]: .*card.yaml does not exist; "
                                             r"review.decisions: .*gone.yaml does not exist"):
        load_turn_config(path)


def test_print_config_round_trips():
    result = CliRunner().invoke(cli, ["run", "unused", "--print-config"])
    assert result.exit_code == 0
    assert TurnConfig.model_validate(yaml.safe_load(result.output)) == TurnConfig()
