"""Two whole turns through ``flenwheel run`` with Z-Image as the character base, on the tiny models."""

from __future__ import annotations

import json

import pytest


def _sources(folder):
    """Four crops of the photo matplotlib ships (a real face), as the turn's source photos."""
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    folder.mkdir()
    with get_sample_data("grace_hopper.jpg") as handle:
        photo = Image.open(handle).convert("RGB")
    width, height = photo.size
    paths = []
    for index, box in enumerate([(0, 0, width, height), (40, 20, width - 40, height - 60),
                                 (80, 40, width - 20, height - 20), (0, 60, width - 80, height)]):
        path = folder / f"source_{index}.png"
        photo.crop(box).resize((256, 256)).save(path)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_two_turns_run_with_z_image_named_as_the_character_base(tmp_path, tiny_z_image, tiny_qwen_edit):
    import yaml
    from click.testing import CliRunner

    from flenwheel.cli import cli
    from flenwheel.core.data.project import Project
    from flenwheel.core.turn.demo import demo_config
    from flenwheel.core.turn.demo_photos import own_character
    from flenwheel.trainers.lora_io import read_metadata

    _sources(tmp_path / "photos")
    character = own_character(tmp_path / "photos")
    raw = demo_config({"flux": tiny_z_image, "qwen-edit": tiny_qwen_edit}, character).model_dump(mode="json")
    raw["models"]["character_base"] = "z-image"
    raw["sources"] = {"add": [{**source, "angle": "front", "expression": "neutral", "mirror": False}
                              for source in character.sources], "require_check": False}
    raw["enrich"]["per_source"] = 2
    raw["editor"]["enabled"] = False  # the editor flywheel is the 2509 toy's; this test is about the base
    raw["train"]["overrides"].update(max_train_steps=4, save_every=4)
    raw["generate"]["families"] = ["expressions"]
    card = tmp_path / "card.yaml"  # one model-card cell: the card's code is the same for every base
    card.write_text(yaml.safe_dump({"portraits": {"angles": ["front"], "expressions": ["neutral"]},
                                    "poses": {"items": []}, "limits": {"min_side": 64}}))
    raw["benchmark"]["card_files"] = [str(card)]
    raw["stop"] = {"max_turns": 2}
    config = tmp_path / "turn.yaml"
    config.write_text(yaml.safe_dump(raw))
    Project.init(tmp_path / "p", name="Ada")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "p"), "--config", str(config), "--auto-review",
                                      "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    project = Project.open(tmp_path / "p")
    for version in ("v1", "v2"):
        lora = project.root / f"models/flux_lora/char_{version}/char_lora_{version}.safetensors"
        assert lora.is_file() and read_metadata(lora)["flenwheel.trainer"] == "z-image"
        assert read_metadata(lora)["flenwheel.base_model"] == str(tiny_z_image)
    synthetic = project.dataset("synthetic").records
    assert synthetic and {r.model for r in synthetic} == {str(tiny_z_image)}
    assert synthetic[0].loras[0].path.endswith("char_lora_v2.safetensors")
    turns = json.loads((project.root / "reports/flywheel.json").read_text())["turns"]
    assert [turn["turn"] for turn in turns] == [1, 2]
