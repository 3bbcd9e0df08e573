"""The scoring function on real photos: identity, one face, resolution, sharpness, head angle, expression, pose."""

from __future__ import annotations

import pytest
from PIL import ImageFilter, ImageOps

from flenwheel.core.benchmark.checks import CardScorer, calibrate_sharpness, parse_checks
from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.curate.quality import sharpness
from flenwheel.core.data.errors import FlenwheelError


@pytest.fixture(scope="module")
def card():
    return load_card()


@pytest.fixture(scope="module")
def scorer(shared_character, card):
    return CardScorer.from_project(shared_character, card)


@pytest.fixture(scope="module")
def cells(shared_character, card):
    return {c.id: c for c in card.cells(shared_character.subject, shared_character.token)}


def statuses(result):
    return {name: check.status for name, check in result["checks"].items()}


def square(image, side=1024):
    return ImageOps.pad(image, (side, side), color=(128, 128, 128))


def test_the_character_passes_every_portrait_check(scorer, cells, photo):
    result = scorer.score(square(photo("obama/obama.jpg")), cells["front-smiling"])
    assert statuses(result) == {"identity": "pass", "one_face": "pass", "resolution": "pass", "sharpness": "pass",
                                "head_angle": "pass", "expression": "pass", "body_pose": "n/a"}
    assert result["instruments"]["expression"]["word"] == "smiling" and result["instruments"]["view"] == "front"
    neutral = scorer.score(square(photo("obama/obama.jpg")), cells["front-neutral"])["checks"]["expression"]
    assert neutral.status == "fail" and "reads as smiling" in neutral.detail and "asks for neutral" in neutral.detail
    assert result["checks"]["identity"].value < 0.6 and result["identity"]["match"] is True
    assert result["checks"]["body_pose"].detail == "not a check of this cell"


def test_someone_else_fails_identity_with_the_distance(scorer, cells, photo):
    result = scorer.score(square(photo("biden/biden2.jpg")), cells["front-neutral"])
    identity = result["checks"]["identity"]
    assert identity.status == "fail" and identity.value > 0.6
    assert identity.detail.startswith(f"distance {identity.value:.2f} > tolerance 0.50")


def test_head_angle_follows_the_turn_and_mirroring_swaps_it(scorer, cells, photo):
    # A slight turn by eye (the mesh reads about 17 degrees: front by the card's 20-degree limit).
    turned = square(photo("obama/obama2.jpg"))
    yaw = scorer.score(turned, cells["front-neutral"])["checks"]["head_angle"]
    assert yaw.status == "pass" and 10 < yaw.value < 20
    mirrored = scorer.score(ImageOps.mirror(turned), cells["front-neutral"])["checks"]["head_angle"]
    assert mirrored.status == "pass" and mirrored.value == pytest.approx(-yaw.value, abs=4)
    profile = scorer.score(turned, cells["profile-left-sad"])["checks"]["head_angle"]
    assert profile.status == "fail" and "reads as front, the prompt asks for profile-left" in profile.detail


def test_small_blurry_group_and_faceless_images_fail_with_reasons(scorer, cells, photo, noise_image):
    small = scorer.score(photo("obama/obama.jpg"), cells["front-neutral"])["checks"]["resolution"]
    assert small.status == "fail" and small.detail == "910x1137 is under 1024 px on a side"
    blurred = square(photo("obama/obama.jpg")).filter(ImageFilter.GaussianBlur(6))
    blur = scorer.score(blurred, cells["front-neutral"])["checks"]["sharpness"]
    assert blur.status == "fail" and blur.detail.startswith("blurry: sharpness")
    group = scorer.score(square(photo("group/obama_biden.jpg")), cells["front-neutral"])["checks"]["one_face"]
    assert (group.status, group.value, group.detail) == ("fail", 2, "2 faces")
    noise = scorer.score(noise_image((256, 256)), cells["front-neutral"])
    assert {n: c.detail for n, c in noise["checks"].items() if c.status == "fail"} == {
        "resolution": "256x256 is under 1024 px on a side"}
    assert {n: c.detail for n, c in noise["checks"].items() if c.status == "not measured"} == {
        n: "not measured: no face found" for n in ("identity", "one_face", "head_angle", "expression")}


def test_sharpness_floor_is_calibrated_on_the_sources(scorer, shared_character):
    from flenwheel.core.data.images import load_image

    sources = shared_character.dataset("source")
    values = sorted(sharpness(load_image(sources.image_path(r))) for r in sources.records)
    assert scorer.sharpness_floor.source_count == 2
    assert scorer.sharpness_floor.floor == pytest.approx(0.25 * (values[0] + values[1]) / 2, abs=0.01)
    assert calibrate_sharpness([], 0.25).floor == 25.0


def test_pose_cells_without_a_pose_model_leave_pose_to_people(scorer, cells, photo):
    result = scorer.score(square(photo("obama/obama3.jpg")), cells["standing"])
    assert result["checks"]["body_pose"].status == "n/a"
    assert "left to the human verdict" in result["checks"]["body_pose"].detail
    assert result["checks"]["one_face"].detail == "not a check of this cell"
    assert result["checks"]["identity"].status == "pass"


class RecordedPose:
    """Stands in for the MediaPipe worker: returns the given landmarks for any file."""

    name = "recorded landmarks"

    def __init__(self, landmarks):
        self.landmarks_value = landmarks

    def landmarks(self, path):
        return self.landmarks_value, 1000, 1000


def test_pose_rules_decide_the_pose_check(shared_character, card, cells, photo, skeletons):
    image = square(photo("obama/obama3.jpg"))
    passing = CardScorer.from_project(shared_character, card, "body_pose", RecordedPose(skeletons["t-pose"]))
    assert passing.score(image, cells["t-pose"])["checks"]["body_pose"].status == "pass"
    failing = CardScorer.from_project(shared_character, card, "body_pose", RecordedPose(skeletons["sitting"]))
    check = failing.score(image, cells["t-pose"])["checks"]["body_pose"]
    assert check.status == "fail" and check.detail.startswith("reads as sitting, side view; the prompt asks for t-pose")
    assert failing.score(image, cells["sitting"])["checks"]["body_pose"].status == "pass"
    assert failing.score(image, cells["sitting"])["checks"]["identity"].detail == "not selected for this run"


def test_check_names_are_validated():
    assert parse_checks("identity, sharpness") == ("identity", "sharpness")
    assert len(parse_checks("")) == 7
    with pytest.raises(FlenwheelError, match="unknown checks vibes"):
        parse_checks("identity,vibes")
