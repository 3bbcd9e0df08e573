"""The card definition: 20 portraits + 3 poses from YAML, fixed seeds, user overrides, clear errors."""

from __future__ import annotations

import pytest

from flenwheel.core.benchmark.model_card import Card, CardError, Cell, load_card
from flenwheel.core.data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS

SUBJECT, TOKEN = "ohwx_char person", "ohwx_char"


def test_builtin_card_is_the_seeds_model_card():
    card = load_card()
    cells = card.cells(SUBJECT, TOKEN)
    portraits = [c for c in cells if c.kind == "portrait"]
    poses = [c for c in cells if c.kind == "pose"]
    assert len(cells) == 23 and card.tries == 4 and card.target == 0.8
    assert {(c.angle, c.expression) for c in portraits} == {(a, e) for a in CARD_ANGLES for e in CARD_EXPRESSIONS}
    assert [(p.pose, p.view) for p in poses] == [("t-pose", "front"), ("standing", "front"), ("sitting", "side")]
    by_id = {c.id: c for c in cells}
    assert by_id["profile-left-smiling"].prompt == (
        "portrait of ohwx_char person, smiling, profile-left view, clean background, studio lighting"
    )
    assert by_id["t-pose"].prompt.startswith("full body photo of ohwx_char person in T-pose")
    assert all(c.settings.width >= 1024 and c.settings.height >= 1024 for c in cells)
    assert "head_angle" in by_id["front-neutral"].checks and "body_pose" in by_id["sitting"].checks
    assert "one_face" not in by_id["sitting"].checks


def test_seeds_are_fixed_distinct_and_shared_by_every_load():
    first = load_card().cells(SUBJECT, TOKEN)
    again = load_card().cells(SUBJECT, TOKEN)
    assert [c.seeds for c in first] == [c.seeds for c in again]
    seeds = [s for c in first for s in c.seeds]
    assert len(set(seeds)) == len(seeds) == 23 * 4
    other = load_card(base_seed=7).cells(SUBJECT, TOKEN)
    assert other[0].seeds != first[0].seeds


def test_user_file_merges_over_the_builtin_card(tmp_path):
    override = tmp_path / "card.yaml"
    override.write_text(
        "tries: 2\nlimits: {min_side: 768}\nportraits:\n  expression_words: {sad: looking sad}\n"
        "cells:\n  front-sad: {seeds: [11, 12], width: 1152}\n",
        encoding="utf-8",
    )
    card = load_card([override])
    cells = {c.id: c for c in card.cells(SUBJECT, TOKEN)}
    assert card.tries == 2 and card.limits.min_side == 768 and card.limits.identity_tolerance == 0.5
    assert cells["front-sad"].seeds == (11, 12) and cells["front-sad"].settings.width == 1152
    assert "looking sad" in cells["front-sad"].prompt and len(cells) == 23
    assert card.sources[-1] == str(override)


def test_cells_round_trip_through_json():
    cell = load_card().cells(SUBJECT, TOKEN)[7]
    assert Cell.from_json(cell.to_json()) == cell


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("portraits: {checks: [identity, telepathy]}", "unknown checks telepathy"),
        ("portraits: {angles: [front, upside-down]}", "unknown angle upside-down"),
        ("cells: {front-neutral: {negative_prompt: blurry}}", "needs true_cfg above 1"),
        ("cells: {nowhere: {seeds: [1]}}", "cells that do not exist: nowhere"),
        ("tries: 0", "tries"),
        ("portraits: {prompt: 'a portrait, [angle] view'}", "must contain [trigger]"),
        ("portraits: [1, 2", "cannot read card file"),
    ],
)
def test_invalid_cards_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CardError, match=message.replace("[", r"\[")):
        card: Card = load_card([path])
        card.cells(SUBJECT, TOKEN)


def test_missing_card_file_is_a_clear_error(tmp_path):
    with pytest.raises(CardError, match="does not exist"):
        load_card([tmp_path / "nope.yaml"])
