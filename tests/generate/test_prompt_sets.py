"""Generation prompt sets: the built-in families, user YAML, seeds and validation messages."""

from __future__ import annotations

import pytest

from flenwheel.core.data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES
from flenwheel.core.generate.prompt_sets import FAMILIES, PromptSetError, derive_seed, load_prompt_set, plan_images

SUBJECT, TOKEN = "ohwx_char person", "ohwx_char"


def test_builtin_set_has_the_four_families_and_covers_the_model_card():
    prompt_set = load_prompt_set()
    assert prompt_set.families() == list(FAMILIES)
    plan = plan_images(prompt_set, SUBJECT, TOKEN)
    assert len(plan) >= 50 and prompt_set.variants == 4
    assert all(TOKEN in item.prompt and "[trigger]" not in item.prompt for item in plan)
    assert {(i.angle, i.expression) for i in plan} >= {(a, e) for a in CARD_ANGLES for e in CARD_EXPRESSIONS}
    assert {i.pose for i in plan} >= set(CARD_POSES)
    assert {(i.settings.width, i.settings.height, i.settings.steps, i.settings.guidance) for i in plan} == {
        (1024, 1024, 28, 3.5)
    }
    profiles = [i for i in plan if i.prompt_id == "profile-left"]
    assert profiles[0].settings.negative_prompt and profiles[0].settings.true_cfg > 1
    assert len({(i.prompt_id, i.variant) for i in plan}) == len(plan)


def test_seeds_are_stable_distinct_and_follow_the_run_seed():
    prompt_set = load_prompt_set().select(ids=["front", "t-pose"])
    first = [i.seed for i in plan_images(prompt_set, SUBJECT, TOKEN, variants=6)]
    assert first == [i.seed for i in plan_images(prompt_set, SUBJECT, TOKEN, variants=6)]
    assert len(set(first)) == 12 and all(0 <= s < 2**31 for s in first)
    fewer = plan_images(prompt_set, SUBJECT, TOKEN, variants=4)
    assert first[:4] == [i.seed for i in fewer if i.prompt_id == "front"]
    assert set(first).isdisjoint(
        i.seed for i in plan_images(prompt_set, SUBJECT, TOKEN, variants=6, base_seed=1)
    )
    assert first[0] == derive_seed(0, "front", 0)


def test_user_yaml_extends_replaces_and_pins_seeds(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "defaults: {variants: 2, steps: 20}\n"
        "families:\n"
        "  angles:\n"
        "    prompts:\n"
        "      - {id: front, prompt: 'passport photo of [trigger]', angle: front, seeds: [11, 12]}\n"
        "  outfits:\n"
        "    prompts:\n"
        "      - {id: suit, prompt: 'photo of ohwx_char in a suit', width: 832, height: 1216}\n",
        encoding="utf-8",
    )
    prompt_set = load_prompt_set([extra])
    assert prompt_set.families() == [*FAMILIES, "outfits"] and str(extra) in prompt_set.sources
    plan = plan_images(prompt_set.select(["angles", "outfits"]), SUBJECT, TOKEN, run_settings={"steps": 8})
    front = [i for i in plan if i.prompt_id == "front"]
    assert [i.prompt for i in front] == ["passport photo of ohwx_char person"] * 2 and [
        i.seed for i in front
    ] == [11, 12]
    suit = [i for i in plan if i.prompt_id == "suit"]
    assert (suit[0].settings.width, suit[0].settings.height, suit[0].settings.steps) == (832, 1216, 8)
    assert len(plan) == 2 * 8

    only = tmp_path / "only.yaml"
    only.write_text(
        "builtin: false\nfamilies: {x: {prompts: [{id: a, prompt: '[trigger] waving'}]}}\n", encoding="utf-8"
    )
    assert [p.id for p in load_prompt_set([only]).prompts] == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("families: {x: {prompts: [{id: a, prompt: '[trigger]', angel: front}]}}", "angel"),
        ("families: {x: {prompts: [{id: a, prompt: '[trigger]', angle: sideways}]}}", "not a known angle"),
        (
            "families: {x: {prompts: [{id: a, prompt: '[trigger]'}, {id: a, prompt: '[trigger] b'}]}}",
            "ids repeat",
        ),
        ("families: {x: {prompts: [{id: a, prompt: '[trigger]', width: 1000}]}}", "multiple of 16"),
        ("families: [1, 2", "not valid YAML"),
        ("- just a list", "must be a mapping"),
        ("format: 9\nfamilies: {}", "newer than this FLENwheel"),
    ],
)
def test_invalid_prompt_files_name_the_file_and_the_problem(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PromptSetError, match=message) as info:
        load_prompt_set([bad])
    assert str(bad) in str(info.value)


def test_plan_refuses_prompts_that_cannot_work(tmp_path):
    no_token = tmp_path / "no_token.yaml"
    no_token.write_text("families: {x: {prompts: [{id: cat, prompt: 'a photo of a cat'}]}}", encoding="utf-8")
    with pytest.raises(PromptSetError, match="'x/cat' does not contain"):
        plan_images(load_prompt_set([no_token]), SUBJECT, TOKEN)
    negative = tmp_path / "negative.yaml"
    negative.write_text(
        "builtin: false\nfamilies: {x: {prompts: [{id: n, prompt: '[trigger]', negative_prompt: blur}]}}",
        encoding="utf-8",
    )
    with pytest.raises(PromptSetError, match="only act with true CFG"):
        plan_images(load_prompt_set([negative]), SUBJECT, TOKEN)
    assert (
        plan_images(load_prompt_set([negative]), SUBJECT, TOKEN, run_settings={"true_cfg": 2.0})[
            0
        ].settings.negative_prompt
        == "blur"
    )
    with pytest.raises(PromptSetError, match="variants must be between"):
        plan_images(load_prompt_set(), SUBJECT, TOKEN, variants=0)
    with pytest.raises(PromptSetError, match="unknown prompt families nope"):
        load_prompt_set().select(["nope"])
    with pytest.raises(PromptSetError, match="does not exist"):
        load_prompt_set([tmp_path / "missing.yaml"])
