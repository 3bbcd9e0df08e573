"""Real photos fed through the whole benchmark in place of generated images, and v1 -> v2 compared.

v2 "renders" the character everywhere with a smiling frontal Obama photo the sources do not
contain; v1 "renders" Joe Biden everywhere. So in v2 front-smiling is verified with no person
(every check, expression included, passes), the other front cells fail the expression check (a
validated smile, not what they ask), the half and profile cells fail the head angle, and the poses
wait for a person. Head views at every angle are tested on labelled photos in test_instruments.py.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from flenwheel.core.benchmark.compare import write_comparison
from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.benchmark.render import AMBER, GREEN, RED, cell_boxes
from flenwheel.core.benchmark.results import write_outputs
from flenwheel.core.benchmark.run import run_benchmark
from flenwheel.core.review.store import ReviewStore
from flenwheel.core.vision.body_pose import ENV_PYTHON

POSES = {"t-pose", "standing", "sitting"}
JUDGED_VIEWS = ("front", "half-left", "half-right")


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory, faces, photo_renderer):
    """The shared character project with both versions benchmarked (one try per cell)."""
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.data.images import load_image
    from flenwheel.core.data.project import Project

    project = Project.init(tmp_path_factory.mktemp("photos") / "obama", name="Barack Obama")
    add_sources(project, [faces / "obama" / "obama3.jpg", faces / "obama" / "obama4.jpg"])
    front = load_image(faces / "obama" / "obama.jpg")
    other = load_image(faces / "biden" / "biden2.jpg")
    card = load_card(tries=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_PYTHON, raising=False)
        run_benchmark(project, photo_renderer("char_v1", lambda cell: other), card)
        run_benchmark(project, photo_renderer("char_v2", lambda cell: front), card)
    return project


def test_identity_passes_for_the_character_and_fails_for_someone_else(benchmarked):
    v1 = write_outputs(benchmarked, "v1").results
    v2 = write_outputs(benchmarked, "v2").results
    identity = {c["id"]: c["tries"][0]["checks"]["identity"] for c in v1["cells"]}
    judged = {c["id"] for c in v1["cells"] if c["kind"] == "portrait" and c["angle"] in JUDGED_VIEWS}
    assert len(judged) == 12 and all(identity[i]["status"] == "fail" for i in judged)
    assert all(identity[i]["status"] == "not measured" and "not validated" in identity[i]["detail"]
               for i in set(identity) - judged), "profiles and full-body framing were never validated"
    assert all("distance" in check["detail"] for check in identity.values())
    assert all(c["tries"][0]["checks"]["identity"]["status"] == "pass" for c in v2["cells"])
    assert v1["summary"]["first_try"]["successes"] == 0


def test_views_and_expressions_are_read(benchmarked):
    cells = {c["id"]: c["tries"][0] for c in write_outputs(benchmarked, "v2").results["cells"]}
    assert {i for i, t in cells.items() if t["outcome"] == "unverified"} == POSES
    assert {i for i, t in cells.items() if t["outcome"] == "success"} == {"front-smiling"}
    assert cells["t-pose"]["unverified"] == ["body_pose"]
    assert cells["front-sad"]["checks"]["head_angle"]["status"] == "pass"
    assert "reads as smiling" in cells["front-sad"]["failures"][0]
    assert "reads as front, the prompt asks for half-right" in cells["half-right-smiling"]["failures"][0]
    assert "reads as front, the prompt asks for profile-left" in cells["profile-left-neutral"]["failures"][0]
    assert cells["front-smiling"]["checks"]["expression"]["value"]["word"] == "smiling"


def test_card_and_report_render_with_real_faces_and_verdicts(benchmarked):
    rows = {c["id"]: c for c in write_outputs(benchmarked, "v2").results["cells"]}
    store = ReviewStore(benchmarked)
    store.decide(rows["front-neutral"]["tries"][0]["image_id"], "benchmark", "v2", "incorrect",
                 reason="identity drift")
    store.decide(rows["t-pose"]["tries"][0]["image_id"], "benchmark", "v2", "correct")
    outputs = write_outputs(benchmarked, "v2")
    summary = outputs.results["summary"]
    assert summary["first_try"] == {"successes": 2, "cells": 23, "rate": round(2 / 23, 4)}
    assert summary["first_try_unverified"] == 2
    assert summary["target_met"] is False and summary["human"]["first_try_cells_with_verdict"] == 2
    assert summary["rows"]["smiling"]["first_try"] == {"successes": 1, "cells": 5, "rate": 0.2}
    assert summary["columns"]["front"]["first_try"]["rate"] == 0.25
    assert summary["columns"]["profile-left"]["first_try"]["rate"] == 0.0
    card = Image.open(outputs.card_path).convert("RGB")
    boxes = cell_boxes(outputs.results)
    assert card.getpixel(boxes["front-smiling"][:2]) == GREEN
    assert card.getpixel(boxes["t-pose"][:2]) == GREEN
    assert card.getpixel(boxes["front-neutral"][:2]) == RED
    assert card.getpixel(boxes["profile-right-sad"][:2]) == RED
    assert card.getpixel(boxes["standing"][:2]) == AMBER
    centre = boxes["front-smiling"]
    face_region = card.crop((centre[0] + 40, centre[1] + 40, centre[2] - 40, centre[3] - 40))
    assert len(face_region.getcolors(1 << 24)) > 1000, "the tile should show the photo, not a flat colour"
    report = " ".join(outputs.report_path.read_text(encoding="utf-8").split())
    assert report.count("data:image/jpeg;base64,") == 24
    assert "human: incorrect (identity drift)" in report and "First-try success 2/23 = 9% verified" in report
    assert "Unverified first tries (not counted): 2" in report


def test_v1_to_v2_comparison_names_every_gained_cell(benchmarked):
    write_outputs(benchmarked, "v1")
    write_outputs(benchmarked, "v2")
    html_path, png_path, data = write_comparison(benchmarked, "v1", "v2")
    assert html_path == benchmarked.benchmarks_dir / "compare_v1_v2.html" and png_path.is_file()
    gained = {row["id"] for row in data["cells"] if row["change"] == "gained"}
    assert gained == {"front-smiling", "t-pose"}, "only verified cells count; unverified ones are still failing"
    assert (data["lost"], data["net_gain"], data["improved"], data["warnings"]) == (0, 2, True, [])
    assert data["first_try_unverified"] == [3, 2]
    distances = next(r for r in data["cells"] if r["id"] == "front-smiling")["identity_distance"]
    assert distances[0] > 0.6 > distances[1]
    html = " ".join(html_path.read_text(encoding="utf-8").split())
    assert "net gain +2 cells (2 gained, 0 lost): improved" in html and html.count("data:image/jpeg") == 2
    card_width = Image.open(benchmarked.benchmarks_dir / "char_v2" / "model_card.png").width
    assert Image.open(png_path).width > 2 * card_width
    stored = json.loads(Image.open(png_path).text["flenwheel"])
    assert stored["comparison"]["net_gain"] == 2
