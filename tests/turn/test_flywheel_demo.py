"""``flenwheel demo OUT``: two whole turns of both flywheels offline, and every artifact of both loops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.turn.demo import run_demo
from flenwheel.core.turn.demo_photos import VARIANTS, own_character, packaged_character


@pytest.mark.slow
def test_the_demo_runs_two_whole_turns_of_both_flywheels(tmp_path):
    lines: list[str] = []
    result = run_demo(tmp_path / "out", log=lines.append)
    project = result.project
    data = json.loads((project / "reports/flywheel.json").read_text())
    assert [t["turn"] for t in data["turns"]] == [1, 2] and data["auto_review"] is True
    assert data["stopped"]["reason"] == "max_turns reached (2)"
    assert [t["char_lora"] for t in data["turns"]] == ["char_v1", "char_v2"]
    assert (project / "data/qwen_training/v1/triplets.jsonl").is_file()
    assert list((project / "models/qwen_lora/v1").glob("*.safetensors"))
    first = data["turns"][0]
    assert first["editor"]["trained"] == "ours:v1" and first["editor"]["comparison"]["figures"]
    assert data["turns"][1]["editor"]["used"] == first["editor"]["chosen"], "turn 2 enriches with the winner"
    for name in ("flywheel.html", "flywheel.png"):
        assert (project / "reports" / name).is_file()
    for benchmark in ("char_v1", "char_v2"):
        assert (project / "benchmarks" / benchmark / "results.json").is_file()
    for path in result.reports.values():
        assert Path(path).exists(), path
    for version in ("v1", "v2"):
        loss = Path(result.reports[f"loss char_{version}"])
        assert loss == project / f"models/flux_lora/char_{version}/loss.png"
        assert loss.read_bytes()[:4] == b"\x89PNG"
        assert len(list(Path(result.reports[f"samples char_{version}"]).glob("step_*.png"))) >= 2
    for turn in data["turns"]:
        assert turn["coverage"]["images"] > 0 and turn["allocation"]["budget"] == turn["allocation"]["budget"]
        assert turn["card"]["columns"] and turn["enrich_aim"] is not None
    assert data["turns"][1]["allocation"]["needs"]["card"] == "char_v1", "turn 2 aims at turn 1's card"
    assert data["turns"][0]["allocation"]["budget"] == data["turns"][1]["allocation"]["budget"]
    assert data["turns"][0]["next_allocation"]["by_view"] == data["turns"][1]["allocation"]["by_view"]
    flywheel_page = (project / "reports/flywheel.html").read_text()
    assert 'id="aiming"' in flywheel_page and "(card char_v1)" in flywheel_page
    card_page = (project / "benchmarks/char_v1/report.html").read_text()
    assert "<h2>Training</h2>" in card_page and "alt='loss curve'" in card_page
    config_text = result.config.read_text()
    assert "demo only; real run: dtype: bf16" in config_text and "flenwheel init PROJECT --gpu" in config_text
    assert data["turns"][0]["reports"]["loss editor v1"] == "models/qwen_lora/v1/loss.png"
    assert any(line.startswith("time per stage") for line in lines)
    assert any("produce noise" in line for line in lines)
    assert any(line.startswith("character: Grace Hopper") and "public domain" in line and "matplotlib" in line
               for line in lines), "the demo names its photo and the photo's licence"
    assert sorted(p.name for p in (tmp_path / "out/photos").iterdir()) == sorted(n for n, _, _ in VARIANTS)
    status = CliRunner().invoke(cli, ["status", str(project)])
    assert status.exit_code == 0 and "stopped: max_turns reached (2)" in status.output
    assert result.seconds < 180


@pytest.mark.slow
def test_the_demo_runs_two_turns_on_the_users_own_photos(tmp_path, faces):
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "own"), "--photos", str(faces / "obama")])
    assert result.exit_code == 0, result.output
    assert f"your own photos from {faces / 'obama'}" in result.output
    project = tmp_path / "own" / "project"
    data = json.loads((project / "reports/flywheel.json").read_text())
    assert [t["char_lora"] for t in data["turns"]] == ["char_v1", "char_v2"]
    sources = {record["source_file"] for record in json.loads((project / "data/source/v1/metadata.json")
                                                              .read_text())["images"]}
    assert str((faces / "obama" / "obama.jpg").resolve()) in sources
    assert not (tmp_path / "own" / "photos").exists(), "the packaged character is not built when photos are given"


def test_the_packaged_character_is_built_from_the_installed_photo(tmp_path):
    from flenwheel.core.data.images import load_image, pixel_hash

    character = packaged_character(tmp_path / "photos")
    files = [Path(source["path"]) for source in character.sources]
    assert [f.name for f in files] == [name for name, _, _ in VARIANTS]
    assert len({pixel_hash(load_image(f)) for f in files}) == len(files), "every variant is a new image"
    assert all(source["mirror"] and source["angle"] == "front" for source in character.sources)
    assert "public domain" in character.licence and "grace_hopper.jpg" in character.licence
    assert min(load_image(tmp_path / "photos/hopper_small.png").size) < 512 <= min(load_image(files[0]).size)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_demo_photos_that_are_not_a_folder_of_photos_get_one_line(tmp_path, make):
    folder = tmp_path / "photos"
    if make == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("no photos here")
    with pytest.raises(FlenwheelError, match="--photos .*10-20 photos"):
        own_character(folder)
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "out"), "--photos", str(folder)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out" / "project").exists()
