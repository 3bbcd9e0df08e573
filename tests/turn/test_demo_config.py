"""The demo's turn.yaml says what it is, and ``flenwheel run`` can run it as the demo does (threads, quiet)."""

from __future__ import annotations

from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.project import Project
from flenwheel.core.turn import loop
from flenwheel.core.turn.config import TurnConfig, load_turn_config
from flenwheel.core.turn.demo import DEMO_THREADS, demo_config, demo_yaml


def _demo_config(tmp_path) -> TurnConfig:
    models = {}
    for name in ("character", "editor"):
        (tmp_path / name).mkdir()
        models[name] = tmp_path / name
    from flenwheel.core.models.registry import CHARACTER, EDITOR, default_family
    from flenwheel.core.turn.demo_photos import packaged_character

    return demo_config({default_family(CHARACTER).name: models["character"],
                        default_family(EDITOR).name: models["editor"]}, packaged_character(tmp_path / "photos"))


def test_the_demo_config_marks_every_demo_only_key_with_the_real_line_and_loads_back(tmp_path):
    config = _demo_config(tmp_path)
    text = demo_yaml(config, tmp_path / "project")
    path = tmp_path / "turn.yaml"
    path.write_text(text)
    assert load_turn_config(path).model_dump() == config.model_dump()
    lines = {line.split(":")[0].strip(): line for line in text.splitlines() if not line.startswith("#")}
    assert lines["dtype"].endswith("# demo only; real run: dtype: bf16")
    assert lines["device"].endswith("# demo only; real run: device: null")
    assert lines["min_triplets"].endswith("# demo only; real run: min_triplets: 10")
    assert lines["send_to_review"].endswith("# demo only; real run: send_to_review: passed")
    assert lines["max_turns"].endswith("# demo only; real run: max_turns: 5")
    assert "real run: the preset's (flenwheel run --print-config --gpu N)" in lines["overrides"]
    assert "flenwheel init PROJECT --gpu" in text
    assert "demo only" not in lines["quantize"]  # a key the demo leaves at its default is not marked


def test_run_uses_the_threads_and_hides_progress_as_asked(tmp_path, monkeypatch):
    import torch
    from diffusers.utils import logging as diffusers_logging

    seen = {}

    def fake_run(project, config, auto, log, max_turns):
        seen.update(threads=torch.get_num_threads(), bars=diffusers_logging.is_progress_bar_enabled())
        return loop.FlywheelRun(project.root)

    monkeypatch.setattr(loop, "run_flywheel", fake_run)
    Project.init(tmp_path / "p", name="Ada")
    before = torch.get_num_threads()
    args = ["run", str(tmp_path / "p"), "--threads", str(DEMO_THREADS), "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen == {"threads": DEMO_THREADS, "bars": False}
    assert torch.get_num_threads() == before and diffusers_logging.is_progress_bar_enabled()
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "p"), "--progress"])
    assert seen["bars"] is True and seen["threads"] == before


def test_off_a_terminal_run_hides_the_bars_but_keeps_the_warnings(tmp_path, monkeypatch):
    from diffusers.utils import logging as diffusers_logging

    seen = {}

    def fake_run(project, config, auto, log, max_turns):
        seen.update(bars=diffusers_logging.is_progress_bar_enabled(), level=diffusers_logging.get_verbosity())
        return loop.FlywheelRun(project.root)

    monkeypatch.setattr(loop, "run_flywheel", fake_run)
    Project.init(tmp_path / "p", name="Ada")
    before = diffusers_logging.get_verbosity()
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "p")]).exit_code == 0  # CliRunner: not a terminal
    assert seen == {"bars": False, "level": before}
    assert CliRunner().invoke(cli, ["run", str(tmp_path / "p"), "--no-progress"]).exit_code == 0
    assert seen == {"bars": False, "level": diffusers_logging.ERROR}
