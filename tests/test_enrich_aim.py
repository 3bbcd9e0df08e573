"""Enrichment aimed at missing views: the view-changing edits go first, and more often, to what the sources lack."""

from __future__ import annotations

from collections import Counter

from click.testing import CliRunner

from flenwheel.core.enrich.plan import EnrichSettings, make_plan


def _sources(project, solid_image, views):
    source = project.create_dataset("source")
    for index, view in enumerate(views):
        source.add_image(solid_image(size=(64, 64), color=(index * 30, 80, 120)), angle=view, expression="neutral",
                         caption=f"photo of ohwx_char person, {view} view")
    return source


def _values(plan, family="camera_angle"):
    return Counter(edit.value for edit in plan.edits if edit.family == family)


def test_no_profile_right_source_plans_more_right_turn_edits(project, solid_image):
    _sources(project, solid_image, ["front", "half-left", "profile-left", "half-right", "front", "half-left",
                                    "profile-left", "half-right"])
    settings = EnrichSettings(per_source=4, families=("camera_angle", "background"))
    aimed, plain = make_plan(project, settings), make_plan(project, EnrichSettings(
        per_source=4, families=("camera_angle", "background"), aim=False))
    assert len(aimed.edits) == len(plain.edits)
    assert _values(aimed)["slightly left"] > _values(plain)["slightly left"]
    assert _values(aimed)["slightly left"] > _values(aimed)["slightly right"]
    assert _values(plain)["slightly left"] == _values(plain)["slightly right"]
    first = next(edit for edit in aimed.edits if edit.family == "camera_angle")
    assert first.value == "slightly left"
    assert first.why == "makes half-right; the sources have no profile-right view"
    assert aimed.aim.lacking == ["profile-right"]
    assert Counter(e.family for e in aimed.edits) == Counter(e.family for e in plain.edits)


def test_the_aim_is_recorded_on_each_edit_and_printed_by_the_dry_run(project, solid_image):
    from flenwheel.cli import cli
    from flenwheel.core.enrich.plan import planned_fields

    _sources(project, solid_image, ["front", "front", "half-left"])
    plan = make_plan(project, EnrichSettings(per_source=4, families=("camera_angle",)))
    aimed = [e for e in plan.edits if e.value == "slightly left"]
    assert "profile-right" in planned_fields(project, plan, aimed[0])["aim"]
    result = CliRunner().invoke(cli, ["enrich", str(project.root), "--family", "camera_angle", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "view edits aimed at what the sources lack (profile-left, half-right, profile-right)" in result.output
    assert "camera_angle/slightly left: weight 4" in result.output


def test_untagged_sources_give_nothing_to_aim_at(project, solid_image):
    _sources(project, solid_image, ["unknown", "unknown", "unknown"])
    plan = make_plan(project, EnrichSettings(per_source=4, families=("camera_angle",)))
    assert plan.aim.lacking == [] and not plan.aim.weights
    assert all(edit.why is None for edit in plan.edits)
