"""The identity tolerance: the measured default, and a project's own calibrated from its sources' spread."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.benchmark.results import write_outputs
from flenwheel.core.benchmark.run import run_benchmark
from flenwheel.core.identity.faces import DetectionSettings
from flenwheel.core.identity.references import (
    CALIBRATION_RANGE,
    DEFAULT_TOLERANCE,
    Reference,
    ReferenceSet,
)

SMALL = "portraits:\n  angles: [front]\n  expressions: [neutral]\nposes:\n  items: []\n"


def _set(points):
    refs = ReferenceSet(DetectionSettings())
    refs.references = [Reference(f"r{i}", f"id{i}", np.asarray(p, dtype=float)) for i, p in enumerate(points)]
    return refs


def test_the_calibrated_tolerance_is_the_widest_nearest_source_distance_within_range():
    # four faces on a line: nearest-other distances 0.30, 0.30, 0.47, 0.47 -> 0.47 (every source passes)
    spread = _set([[0.0], [0.3], [0.77], [1.24]])
    calibration = spread.calibrated_tolerance()
    assert calibration.value == 0.47 and calibration.source == "sources" and calibration.references == 4
    assert calibration.widest_nearest == pytest.approx(0.47) and calibration.median_nearest == pytest.approx(0.385)
    assert _set([[0.0], [0.1], [0.2]]).calibrated_tolerance().value == CALIBRATION_RANGE[0], "tight: the floor"
    loose = _set([[0.0], [0.9], [1.8]]).calibrated_tolerance()
    assert loose.value == CALIBRATION_RANGE[1] and "kept within 0.45-0.60" in loose.note, "varied: the ceiling"
    few = _set([[0.0], [0.9]]).calibrated_tolerance()
    assert few.value == DEFAULT_TOLERANCE and few.source == "default" and "fewer than 3" in few.note


@pytest.fixture(scope="module")
def four_sources(tmp_path_factory, faces):
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.data.project import Project

    project = Project.init(tmp_path_factory.mktemp("calibrated") / "obama", name="Barack Obama")
    names = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama4.jpg")
    add_sources(project, [faces / "obama" / name for name in names])
    return project


def test_a_card_calibrated_on_its_sources_records_and_shows_the_tolerance(four_sources, faces, photo_renderer):
    """``identity_tolerance: sources``: the card's value is the sources' own spread (recomputed here from
    their encodings), and results.json and the report say where it came from."""
    from flenwheel.core.identity.identity import IdentityScorer

    matrix = IdentityScorer.from_project(four_sources).references.matrix
    distances = np.linalg.norm(matrix[:, None] - matrix[None], axis=2) + np.diag([np.inf] * len(matrix))
    expected = min(0.6, max(0.45, np.ceil(distances.min(axis=1).max() * 100) / 100))

    card_file = four_sources.root / "card.yaml"
    card_file.write_text(SMALL, encoding="utf-8")
    card = load_card([card_file], tries=1, limits={"identity_tolerance": "sources"})
    other = faces / "biden" / "biden2.jpg"
    from flenwheel.core.data.images import load_image

    run_benchmark(four_sources, photo_renderer("char_v1", lambda cell: load_image(other)), card, checks="identity")
    outputs = write_outputs(four_sources, "v1")
    stored = json.loads(outputs.results_path.read_text())["settings"]["scoring"]["identity_tolerance"]
    assert stored["from"] == "sources" and stored["references"] == 4
    assert stored["value"] == expected and 0.45 <= expected < 0.6
    check = outputs.results["cells"][0]["tries"][0]["checks"]["identity"]
    assert check["status"] == "fail" and f"tolerance {stored['value']:.2f}" in check["detail"]
    report = outputs.report_path.read_text()
    assert f"tolerance {stored['value']:.2f} (from the spread of 4 sources" in report
    assert "model: face_recognition 128-d encodings" in report
