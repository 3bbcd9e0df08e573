"""Edit templates: the seed's families and values, user YAML families, balanced seeded selection."""

from __future__ import annotations

from collections import Counter

import pytest

from flenwheel.core.enrich.edit_prompts import TemplateError, default_families, load_templates, plan_edits

SEED_FAMILIES = {
    "background": {"forest", "studio", "beach", "urban"},
    "lighting": {"daylight", "sunset", "nighttime", "studio"},
    "style": {"oil painting", "watercolor", "sketch"},
    "camera_angle": {"slightly left", "slightly right", "lower", "higher"},
}
ANGLE_COMMANDS = ("将镜头向左旋转45度", "将镜头转为俯视", "将镜头转为特写镜头")


def test_builtin_families_are_the_seeds_and_all_keep_the_person():
    templates = load_templates()
    for family, values in SEED_FAMILIES.items():
        assert set(templates.family(family).values) == values
        for value in values:
            prompt = templates.prompt(family, value)
            assert "Keep the person exactly the same" in prompt and "identical face" in prompt
    angles = templates.family("multiple_angles").values
    angle_prompts = [templates.prompt("multiple_angles", value) for value in angles]
    for command in ANGLE_COMMANDS:
        matching = [p for p in angle_prompts if p.startswith(command)]
        assert matching and "保持人物的脸和身份完全不变" in matching[0]


def test_angle_family_is_default_only_with_an_angle_lora():
    templates = load_templates()
    assert default_families(templates) == list(SEED_FAMILIES)
    with_lora = default_families(templates, ["/loras/Qwen-Edit-2509-Multiple-angles.safetensors"])
    assert with_lora == [*SEED_FAMILIES, "multiple_angles"]


def test_reference_note_names_picture_two():
    templates = load_templates()
    assert "Picture 2" in templates.prompt("background", "forest", with_reference=True)
    assert "Picture 2" not in templates.prompt("background", "forest")


def test_user_yaml_adds_and_replaces_families(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "families:\n"
        "  outfit:\n"
        "    prompt: 'Dress the person in {value}. {keep_identity}'\n"
        "    caption: 'wearing {value}'\n"
        "    values: {suit: 'a dark business suit', hoodie: 'a grey hoodie'}\n"
        "  style:\n"
        "    prompt: 'Make it {value}. {keep_identity}'\n"
        "    values: [pixel art]\n",
        encoding="utf-8",
    )
    templates = load_templates([extra])
    prompt = templates.prompt("outfit", "suit")
    assert prompt.startswith("Dress the person in a dark business suit. Keep the person")
    assert templates.family("outfit").caption_for("hoodie") == "wearing hoodie"
    assert list(templates.family("style").values) == ["pixel art"]
    assert "background" in templates.families


@pytest.mark.parametrize(("body", "message"), [
    ("families:\n  x:\n    prompt: 'no placeholder'\n    values: [a]\n", "must contain {value}"),
    ("families:\n  x:\n    prompt: 'Use {value}.'\n    values: [a]\n", "{keep_identity}"),
    ("families:\n  x:\n    prompt: 'Use {value}. {keep_identity}'\n    values: []\n", "at least one value"),
    ("families:\n  Bad Name:\n    prompt: '{value} {keep_identity}'\n    values: [a]\n", "lower-case"),
    ("families: [1, 2]\n", "must be a mapping"),
    ("just: text\n", "no 'families'"),
    ("families: {x: {prompt: '{value", "not readable YAML"),
])
def test_malformed_template_file_names_file_and_problem(tmp_path, body, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError) as error:
        load_templates([bad])
    assert str(bad) in str(error.value) and message in str(error.value)


def test_missing_template_file_is_named(tmp_path):
    with pytest.raises(TemplateError, match="nope.yaml does not exist"):
        load_templates([tmp_path / "nope.yaml"])


def test_selection_is_deterministic_and_depends_on_the_seed():
    templates = load_templates()
    families = list(SEED_FAMILIES)
    first = plan_edits(templates, families, 12, 4, seed=7)
    assert first == plan_edits(templates, families, 12, 4, seed=7)
    other = plan_edits(templates, families, 12, 4, seed=8)
    assert [(e.family, e.value) for e in first] != [(e.family, e.value) for e in other]


@pytest.mark.parametrize(("sources", "per_source", "families"), [
    (10, 4, list(SEED_FAMILIES)),
    (13, 3, list(SEED_FAMILIES)),
    (17, 5, [*SEED_FAMILIES, "multiple_angles"]),
])
def test_selection_balances_families_and_values_across_the_dataset(sources, per_source, families):
    templates = load_templates()
    plan = plan_edits(templates, families, sources, per_source, seed=3)
    assert len(plan) == sources * per_source
    family_counts = Counter(edit.family for edit in plan)
    assert set(family_counts) == set(families)
    assert max(family_counts.values()) - min(family_counts.values()) <= 1
    for family in families:
        value_counts = Counter(edit.value for edit in plan if edit.family == family)
        assert max(value_counts.values()) - min(value_counts.values()) <= 1
    for index in range(sources):
        own = [edit.family for edit in plan if edit.source_index == index]
        assert len(own) == per_source and len(set(own)) == min(per_source, len(families))


def test_adding_sources_keeps_the_plan_of_earlier_sources():
    templates = load_templates()
    before = plan_edits(templates, list(SEED_FAMILIES), 5, 4, seed=1)
    after = plan_edits(templates, list(SEED_FAMILIES), 9, 4, seed=1)
    assert after[: len(before)] == before


def test_plan_refuses_unknown_or_repeated_families_and_bad_counts():
    templates = load_templates()
    with pytest.raises(TemplateError, match="unknown edit family 'hats'"):
        plan_edits(templates, ["background", "hats"], 3, 4, 0)
    with pytest.raises(TemplateError, match="listed twice"):
        plan_edits(templates, ["style", "style"], 3, 4, 0)
    with pytest.raises(TemplateError, match="at least 1"):
        plan_edits(templates, ["style"], 3, 0, 0)
