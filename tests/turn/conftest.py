"""A small turn config on the tiny models, shared by the loop tests that run real stages."""

from __future__ import annotations

import pytest
import yaml

from flenwheel.core.turn.config import TurnConfig
from flenwheel.core.turn.demo import TINY_EDITOR_TRAINING, TINY_TRAINING, demo_config
from flenwheel.core.turn.demo_photos import packaged_character

ONE_CELL_CARD = {"portraits": {"angles": ["front"], "expressions": ["neutral"]}, "poses": {"items": []},
                 "limits": {"min_side": 64}}


@pytest.fixture
def small_config(tmp_path, tiny_flux, tiny_qwen_edit) -> TurnConfig:
    """A one-turn config on the tiny models: 3 sources, a one-cell card, a handful of trainer steps."""
    character = packaged_character(tmp_path / "photos")
    data = demo_config({"flux": tiny_flux, "qwen-edit": tiny_qwen_edit}, character).model_dump(mode="json")
    card = tmp_path / "card.yaml"
    card.write_text(yaml.safe_dump(ONE_CELL_CARD))
    data["sources"] = {"add": [{**source, "mirror": False} for source in character.sources[:3]],
                       "require_check": False}
    data["train"]["overrides"] = {**TINY_TRAINING, "max_train_steps": 6, "save_every": 6}
    data["generate"]["families"] = ["expressions"]
    data["benchmark"]["card_files"] = [str(card)]
    data["editor"] = {"min_triplets": 1, "overrides": {**TINY_EDITOR_TRAINING, "max_train_steps": 4, "save_every": 4},
                      "compare_sources": 1}
    data["stop"] = {"max_turns": 1}
    return TurnConfig.model_validate(data)
