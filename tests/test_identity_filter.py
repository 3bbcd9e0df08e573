"""Step 1.6 on a project: filtered/ copies, scores in records, manifests, re-runs, the CLI and caching."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("face_recognition")

from flenwheel.cli import cli  # noqa: E402
from flenwheel.core.data.errors import DatasetError, FlenwheelError  # noqa: E402
from flenwheel.core.data.images import load_image  # noqa: E402
from flenwheel.core.identity import face_cache  # noqa: E402
from flenwheel.core.identity.filter import filter_dataset, run_filter  # noqa: E402
from flenwheel.core.identity.identity import IdentityScorer  # noqa: E402

SOURCES = ["obama/obama.jpg", "obama/obama2.jpg", "obama/obama3.jpg"]
SYNTHETIC = {
    "obama4": "obama/obama4.jpg",
    "obama_small": "obama/obama_small.jpg",
    "biden": "biden/biden.jpg",
    "group": "group/obama_biden.jpg",
}
CONTRACT = (
    "distance",
    "mean_distance",
    "similarity",
    "match",
    "tolerance",
    "closest_reference",
    "face_count",
    "reason",
    "policy",
)


def _shrink(image: Image.Image, side: int = 640) -> Image.Image:
    """Smaller copies keep the suite fast; faces stay well above the detector's minimum."""
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


@pytest.fixture
def character(project, faces, noise_image):
    """A project whose sources are three photos of Obama, and a synthetic v1 with five 'generations'."""
    sources = project.create_dataset("source")
    for name in SOURCES:
        sources.add_image(
            _shrink(load_image(faces / name)),
            stem=name.split("/")[1].split(".")[0],
            caption=f"photo of {project.subject}",
        )
    synthetic = project.create_dataset("synthetic")
    for seed, (stem, name) in enumerate(SYNTHETIC.items()):
        synthetic.add_image(
            _shrink(load_image(faces / name)), stem=stem, prompt=f"photo of {project.subject}", seed=seed
        )
    synthetic.add_image(noise_image((320, 320)), stem="noise", prompt="photo", seed=99)
    return project


def _by_stem(dataset):
    return {record.filename.removesuffix(".png"): record for record in dataset.records}


def test_filter_copies_matches_records_scores_and_keeps_the_manifest_right(character):
    # dlib HOG's boxes make Biden the group photo's largest face (BlazeFace's make it Obama).
    report = run_filter(character, model="hog")
    dataset = character.dataset("synthetic", "v1")
    assert sorted(o.filename for o in report.kept) == ["obama4.png", "obama_small.png"]
    assert report.removed_by_verdict() == {"mismatch": 2, "no_face": 1}
    assert sorted(p.name for p in (dataset.path / "filtered").iterdir()) == ["obama4.png", "obama_small.png"]
    records = _by_stem(dataset)
    for stem, record in records.items():
        identity = record.scores["identity"]
        assert all(key in identity for key in CONTRACT), stem
        assert identity["match"] is (stem in ("obama4", "obama_small"))
        assert record.filtered == (f"filtered/{stem}.png" if identity["match"] else None)
    assert records["noise"].scores["identity"]["reason"] == "no face"
    assert records["biden"].scores["identity"]["reason"].startswith("distance ")
    assert records["group"].scores["identity"]["face_count"] == 2
    assert dataset.verify().ok
    info = dataset.load().info["identity_filter"]
    assert info["kept"] == 2 and info["removed"] == 3 and info["tolerance"] == 0.5
    assert (
        load_image(dataset.path / "filtered/obama4.png").tobytes()
        == load_image(dataset.image_path(records["obama4"])).tobytes()
    )


def test_a_second_run_reencodes_no_reference_and_reuses_scores(character, monkeypatch):
    first = run_filter(character)
    assert first.scorer.references.encoded == 3 and first.scorer.references.cached == 0
    assert len(list((character.cache_dir / "identity").glob("*.json"))) == 3

    def refuse(*args, **kwargs):
        raise AssertionError("a reference was encoded again")

    monkeypatch.setattr(face_cache, "compute_faces", refuse)
    monkeypatch.setattr(IdentityScorer, "score", refuse)
    second = run_filter(character, tolerance=0.2)
    assert second.scorer.references.encoded == 0 and second.scorer.references.cached == 3
    assert all(o.reused for o in second.outcomes)
    kept = {o.filename for o in second.kept}
    assert kept == {o.filename for o in first.kept if o.score.distance <= 0.2}
    dataset = character.dataset("synthetic", "v1")
    assert {p.name for p in (dataset.path / "filtered").iterdir()} == kept
    assert dataset.verify().ok


def test_reviewed_records_are_left_alone(character):
    run_filter(character)
    dataset = character.dataset("synthetic", "v1")
    with dataset.edit() as edit:
        record = next(r for r in edit.records if r.filename == "obama4.png")
        record.label, record.reason = "good", "looks right"
    report = run_filter(character, tolerance=0.05, rescore=True)
    skipped = [o.filename for o in report.skipped]
    assert skipped == ["obama4.png"]
    assert (dataset.path / "filtered/obama4.png").exists()
    assert _by_stem(dataset)["obama4"].label == "good"


def test_interrupt_keeps_the_scores_already_measured(character):
    dataset = character.dataset("synthetic", "v1")
    scorer = IdentityScorer.from_project(character)

    class Stop(Exception):
        pass

    def progress(done, total, preview):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        filter_dataset(dataset, scorer, progress=progress)
    scored = [r.filename for r in dataset.records if "identity" in r.scores]
    assert scored == ["obama4.png", "obama_small.png"]
    assert dataset.verify().ok


def test_unreadable_images_are_removed_with_a_reason(character):
    dataset = character.dataset("synthetic", "v1")
    target = dataset.image_path(_by_stem(dataset)["biden"])
    target.write_bytes(target.read_bytes()[:500])
    report = run_filter(character)
    outcome = next(o for o in report.outcomes if o.filename == "biden.png")
    assert outcome.status == "removed" and outcome.score.reason.startswith("unreadable")


def test_empty_synthetic_version_is_a_clear_error(project, faces):
    project.create_dataset("source").add_image(load_image(faces / "obama/obama.jpg"), stem="obama")
    project.create_dataset("synthetic")
    with pytest.raises(DatasetError, match="no images to filter"):
        run_filter(project)


def test_filter_command_text_and_json(character):
    runner = CliRunner()
    text = runner.invoke(cli, ["filter", str(character.root), "--version", "v1", "--detector", "hog"])
    assert text.exit_code == 0, text.output
    assert "kept 2, removed 3 (mismatch 2, no_face 1)" in text.output
    assert "removed noise.png: no face" in text.output
    result = runner.invoke(cli, ["filter", str(character.root), "--json", "--tolerance", "0.5", "--detector", "hog"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dataset"] == "synthetic/v1" and data["tolerance"] == 0.5 and data["policy"] == "largest"
    assert data["kept"] == 2 and data["removed"] == 3 and data["skipped"] == 0
    assert data["references"]["count"] == 3 and data["references"]["cached"] == 3
    assert data["filtered_dir"].endswith("data/synthetic/v1/filtered")
    row = next(r for r in data["images"] if r["filename"] == "group.png")
    assert row["status"] == "removed" and row["identity"]["face_count"] == 2 and row["filtered"] is None
    reject = json.loads(
        runner.invoke(cli, ["filter", str(character.root), "--json", "--policy", "reject"]).output
    )
    row = next(r for r in reject["images"] if r["filename"] == "group.png")
    assert row["identity"]["reason"] == "2 faces (policy reject)"


def test_filter_command_errors(tmp_path, project):
    runner = CliRunner()
    missing = runner.invoke(cli, ["filter", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    no_synthetic = runner.invoke(cli, ["filter", str(project.root)])
    assert no_synthetic.exit_code == 1 and "no synthetic dataset" in no_synthetic.output


def test_a_project_without_usable_references_says_what_to_do(project):
    project.create_dataset("source")
    project.create_dataset("synthetic")
    with pytest.raises(FlenwheelError, match="no reference images were given"):
        run_filter(project)


def test_filtered_images_carry_the_instruments_readings_so_pristine_picks_count_as_measured(character, faces):
    """The filter reads each face's view once it has found it, with the identity score unchanged."""
    from flenwheel.core.data.taxonomy import CARD_ANGLES
    from flenwheel.core.identity.coverage import count_coverage
    from flenwheel.core.review.placement import place
    from flenwheel.core.review.store import ReviewStore

    run_filter(character)
    dataset = character.dataset("synthetic", "v1")
    records = _by_stem(dataset)
    readings = records["obama4"].scores["instruments"]
    assert readings["faces"] == 1 and readings["face_problem"] is None and isinstance(readings["yaw"], float)
    view = readings["view"]
    assert view in CARD_ANGLES
    assert records["noise"].scores["instruments"]["face_problem"] == "not measured: no face found"
    assert "instruments" not in records["obama4"].scores["identity"]  # beside the score, not inside it
    scorer = IdentityScorer.from_project(character)
    photo = load_image(dataset.image_path(records["obama4"]))
    plain, read = scorer.score(photo), scorer.reading_instruments().score(photo)
    assert plain.to_json() == read.to_json() and plain.instruments is None and read.instruments["view"] == view
    assert sum(count_coverage(dataset.records).views.values()) >= 2  # measured, not intents: counted
    ReviewStore(character).decide(records["obama4"].id, "synthetic", "v1", "pristine")
    place(character, "synthetic", "v1")
    pristine = count_coverage(character.dataset("pristine", "v1").records)
    assert pristine.images == 1 and pristine.views[view] == 1 and pristine.unmeasured == 0


def test_a_picture_without_a_face_is_searched_once_when_the_instruments_read_it(character, monkeypatch):
    """The readings' own search counts: a face-less picture is not searched a second time."""
    from flenwheel.core.identity import identity

    scorer = IdentityScorer.from_project(character).reading_instruments()
    synthetic = character.dataset("synthetic", "v1")
    noise = load_image(synthetic.image_path(_by_stem(synthetic)["noise"]))

    def second_search(*args, **kwargs):
        raise AssertionError("searched twice")

    monkeypatch.setattr(identity, "detect", second_search)
    score = scorer.score(noise)
    assert score.verdict == "no_face" and score.instruments["face_problem"] == "not measured: no face found"
