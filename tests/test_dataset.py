"""Versioned datasets: records, metadata schema, manifests, immutability, atomicity."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from flenwheel.core.data import atomic
from flenwheel.core.data.dataset import MANIFEST_FILE, DuplicateImageError
from flenwheel.core.data.errors import DatasetError
from flenwheel.core.data.images import pixel_hash, read_png_record


def test_added_image_is_a_png_with_its_record_and_the_source_schema(project, noise_image):
    dataset = project.create_dataset("source")
    image = noise_image()
    record = dataset.add_image(image, stem="front photo", caption="photo of ohwx_char person", angle="front",
                               expression="neutral", quality={"passed": True})
    assert record.id == pixel_hash(image)
    assert record.filename == "front_photo.png"
    path = dataset.path / record.filename
    assert path.is_file()
    assert read_png_record(path)["id"] == record.id
    metadata = json.loads((dataset.path / "metadata.json").read_text())
    assert metadata["dataset_version"] == "v1"
    entry = metadata["images"][0]
    for key in ("filename", "caption", "angle", "expression", "quality", "id", "parents", "stage"):
        assert key in entry
    assert entry["stage"] == "source"


def test_enriched_versions_use_the_seed_metadata_name(project, noise_image):
    dataset = project.create_dataset("enriched")
    dataset.add_image(noise_image(), stem="edit", parents=["abc"], prompt="new background", seed=3)
    assert (dataset.path / "enrichment_metadata.json").is_file()
    record = dataset.records[0]
    assert record.parents == ["abc"] and record.seed == 3


def test_extra_record_fields_round_trip(project, noise_image):
    dataset = project.create_dataset("synthetic")
    dataset.add_image(noise_image(), stem="x", family="poses", lora_version="char_v1")
    record = dataset.records[0]
    assert record.model_extra["family"] == "poses"
    assert record.to_json()["lora_version"] == "char_v1"


def test_duplicate_pixels_are_refused_with_the_existing_file_named(project, noise_image):
    dataset = project.create_dataset("source")
    dataset.add_image(noise_image(), stem="a")
    with pytest.raises(DuplicateImageError, match="already in source/v1 as a.png"):
        dataset.add_image(noise_image(), stem="b")
    assert len(dataset.records) == 1
    assert not (dataset.path / "b.png").exists()


def test_name_collisions_get_the_id_prefix(project, noise_image):
    dataset = project.create_dataset("source")
    first = dataset.add_image(noise_image(seed=1), stem="photo")
    second = dataset.add_image(noise_image(seed=2), stem="photo")
    assert first.filename == "photo.png"
    assert second.filename == f"photo_{second.id[:8]}.png"


def test_manifest_lists_every_file_and_verify_detects_changes(project, noise_image):
    dataset = project.create_dataset("source")
    for seed in range(3):
        dataset.add_image(noise_image(seed=seed), stem=f"img{seed}")
    manifest = json.loads((dataset.path / MANIFEST_FILE).read_text())["files"]
    assert set(manifest) == {"img0.png", "img1.png", "img2.png", "metadata.json"}
    assert dataset.verify().ok
    (dataset.path / "img0.png").write_bytes(b"tampered")
    (dataset.path / "img1.png").unlink()
    (dataset.path / "stray.txt").write_text("hello")
    report = dataset.verify()
    assert report.changed == ["img0.png"]
    assert report.missing == ["img1.png"]
    assert report.extra == ["stray.txt"]
    assert not report.ok


def test_finished_version_takes_no_new_images(project, noise_image):
    dataset = project.create_dataset("source")
    dataset.add_image(noise_image(seed=1), stem="a")
    dataset.finish()
    with pytest.raises(DatasetError, match="finished.*start v2"):
        dataset.add_image(noise_image(seed=2), stem="b")
    assert [r.filename for r in dataset.records] == ["a.png"]
    assert dataset.verify().ok


def test_review_placement_moves_files_and_keeps_the_manifest_true(project, noise_image):
    dataset = project.create_dataset("enriched")
    record = dataset.add_image(noise_image(), stem="edit")
    dataset.finish()
    with dataset.edit() as change:
        change.move_file(record.filename, "good/edit.png")
        change.records[0].filename = "good/edit.png"
        change.records[0].label = "good"
    assert (dataset.path / "good" / "edit.png").is_file()
    assert not (dataset.path / "edit.png").exists()
    assert dataset.records[0].label == "good"
    assert dataset.verify().ok


def test_paths_cannot_leave_the_version_folder(project):
    dataset = project.create_dataset("source")
    for bad in ("../../flenwheel.json", "/etc/passwd", ""):
        with pytest.raises(DatasetError):
            dataset.resolve(bad)
    os.symlink("/etc", dataset.path / "escape")
    with pytest.raises(DatasetError, match="leads outside"):
        dataset.resolve("escape/passwd")


def test_an_interrupted_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "metadata.json"
    atomic.atomic_write_json(target, {"version": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(target) as handle:
            handle.write(b'{"version": 2, "half')
            raise RuntimeError("power cut")
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metadata.json"]


def test_a_crash_while_committing_keeps_the_previous_metadata(project, noise_image, monkeypatch):
    dataset = project.create_dataset("source")
    dataset.add_image(noise_image(seed=1), stem="a")
    before = dataset.metadata_path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("flenwheel.core.data.dataset.atomic_write_json", crash)
    with pytest.raises(OSError):
        dataset.add_image(noise_image(seed=2), stem="b")
    monkeypatch.undo()
    assert dataset.metadata_path.read_bytes() == before
    assert [r.filename for r in dataset.records] == ["a.png"]


def test_malformed_metadata_names_the_file(project):
    dataset = project.create_dataset("source")
    dataset.metadata_path.write_text("[1, 2")
    with pytest.raises(DatasetError, match="metadata.json is not valid JSON"):
        _ = dataset.records


def test_an_add_that_crashed_before_commit_can_be_redone(project, noise_image, monkeypatch):
    dataset = project.create_dataset("source")
    real_commit = type(dataset)._commit
    calls = {"n": 0}

    def commit_then_crash(self, metadata, manifest):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real_commit(self, metadata, manifest)

    monkeypatch.setattr(type(dataset), "_commit", commit_then_crash)
    with pytest.raises(KeyboardInterrupt):
        dataset.add_image(noise_image(), stem="a")
    assert (dataset.path / "a.png").is_file() and dataset.records == []
    record = dataset.add_image(noise_image(), stem="a")
    assert record.filename == "a.png"
    assert dataset.verify().ok


def _killed_after_writing(monkeypatch, name: str) -> None:
    """The process dies right after ``name`` is renamed into place (kill -9 between two writes)."""
    real_replace = os.replace

    def replace_then_die(source, target):
        real_replace(source, target)
        if os.path.basename(target) == name:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace_then_die)


@pytest.mark.parametrize("then", ["add", "verify"])
def test_a_kill_between_metadata_and_manifest_loses_no_manifest_entry(project, noise_image, monkeypatch, then):
    dataset = project.create_dataset("source")
    dataset.add_image(noise_image(seed=1), stem="a")
    _killed_after_writing(monkeypatch, dataset.metadata_path.name)
    with pytest.raises(KeyboardInterrupt):
        dataset.add_image(noise_image(seed=2), stem="b")
    monkeypatch.undo()
    assert [r.filename for r in dataset.records] == ["a.png", "b.png"]  # the metadata was written
    if then == "add":
        dataset.add_image(noise_image(seed=3), stem="c")
    report = dataset.verify()
    assert report.ok, report.to_json()
    manifest = json.loads(dataset.manifest_path.read_text())["files"]
    assert "b.png" in manifest and not any(p.name.startswith(".manifest") for p in dataset.path.iterdir())


def test_a_kill_before_the_metadata_write_leaves_the_previous_commit(project, noise_image, monkeypatch):
    from flenwheel.core.data.dataset import PENDING_MANIFEST_FILE

    dataset = project.create_dataset("source")
    dataset.add_image(noise_image(seed=1), stem="a")
    manifest_before = dataset.manifest_path.read_bytes()
    _killed_after_writing(monkeypatch, PENDING_MANIFEST_FILE)
    with pytest.raises(KeyboardInterrupt):
        dataset.add_image(noise_image(seed=2), stem="b")
    monkeypatch.undo()
    assert [r.filename for r in dataset.records] == ["a.png"]
    assert dataset.verify().extra == ["b.png"]  # the uncommitted image is reported, the pending manifest dropped
    assert dataset.manifest_path.read_bytes() == manifest_before
    assert dataset.add_image(noise_image(seed=2), stem="b").filename == "b.png"  # redoing it reuses the file
    assert dataset.verify().ok


def test_adding_an_image_writes_its_review_thumbnail(project, noise_image):
    from flenwheel.core.data.thumbnails import DEFAULT_SIZE, thumb_path

    record = project.create_dataset("enriched").add_image(noise_image((640, 480)), stem="edit")
    thumb = thumb_path(project.cache_dir, record.id, DEFAULT_SIZE)
    with Image.open(thumb) as picture:
        assert max(picture.size) == DEFAULT_SIZE and picture.format == "JPEG"
