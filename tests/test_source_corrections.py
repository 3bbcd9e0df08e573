"""`flenwheel source remove` / `retag`: a mislabelled or unwanted photo can be corrected, never silently lost."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.curate.corrections import remove_sources, retag_sources
from flenwheel.core.curate.curation import CurationError, add_sources
from flenwheel.core.data.images import read_png_record


@pytest.fixture
def sources(project, tmp_path, noise_image):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        noise_image(size=(96, 96), seed=index).save(photos / f"p{index}.png")
    add_sources(project, [photos], angle="front", expression="neutral")
    return project


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_retag_on_an_open_version_fixes_record_png_and_caption_in_place(sources):
    result = _run("source", "retag", sources.root, "p1.png", "--angle", "profile-left", "--expression", "smiling")
    assert result.exit_code == 0, result.output
    assert "in source/v1" in result.output and "new version" not in result.output
    dataset = sources.dataset("source", "v1")
    record = next(r for r in dataset.records if r.filename == "p1.png")
    assert (record.angle, record.expression) == ("profile-left", "smiling")
    assert record.caption == f"photo of {sources.subject}, profile-left view, smiling"
    assert read_png_record(dataset.image_path(record))["angle"] == "profile-left"
    assert dataset.verify().ok
    assert sources.versions("source") == ["v1"]


def test_a_written_caption_survives_a_retag_and_a_new_one_needs_the_token(sources):
    retag_sources(sources, ["p0"], caption="[trigger] in a red coat")
    retag_sources(sources, ["p0"], angle="half-left")
    record = next(r for r in sources.dataset("source").records if r.filename == "p0.png")
    assert record.caption == f"{sources.subject} in a red coat" and record.angle == "half-left"
    with pytest.raises(CurationError, match="does not contain the instance token"):
        retag_sources(sources, ["p0"], caption="a red coat")
    with pytest.raises(CurationError, match="nothing to change"):
        retag_sources(sources, ["p0"])


def test_remove_on_an_open_version_deletes_the_file_and_its_record(sources):
    dataset = sources.dataset("source", "v1")
    victim = next(r for r in dataset.records if r.filename == "p2.png")
    result = _run("source", "remove", sources.root, victim.id[:8], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"dataset": "source/v1", "new_version": False, "removed": ["p2.png"],
                                         "retagged": []}
    assert [r.filename for r in dataset.records] == ["p0.png", "p1.png"]
    assert not (dataset.path / "p2.png").exists() and dataset.verify().ok


def test_a_finished_version_stays_untouched_and_the_change_goes_into_a_new_one(sources):
    old = sources.dataset("source", "v1")
    old.finish()
    before = old.metadata_path.read_bytes()
    change = remove_sources(sources, ["p0.png"])
    assert change.new_version and change.dataset == "source/v2"
    assert old.metadata_path.read_bytes() == before and (old.path / "p0.png").exists() and old.verify().ok
    new = sources.dataset("source", "v2")
    assert [r.filename for r in new.records] == ["p1.png", "p2.png"]
    assert {r.id for r in new.records} < {r.id for r in old.records}
    assert new.load().info["derived_from"] == "source/v1" and "removed p0.png" in new.load().info["change"]
    retag = retag_sources(sources, ["p1.png"], angle="profile-right", version="v1")
    assert retag.dataset == "source/v3" and len(sources.dataset("source", "v3").records) == 3


def test_an_unknown_or_ambiguous_name_fails_and_changes_nothing(sources):
    result = _run("source", "remove", sources.root, "nothere.png")
    assert result.exit_code == 1 and "'nothere.png' matches no image in source/v1" in result.output
    assert len(sources.dataset("source").records) == 3
    assert _run("source", "retag", sources.root, "p0.png", "--angle", "sideways").exit_code == 2
