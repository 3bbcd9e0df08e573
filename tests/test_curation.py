"""Step 1.1: adding sources (normalised, checked, captioned) and the set's success criteria."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from flenwheel.core.curate.curation import CurationError, add_sources, check_sources, make_caption
from flenwheel.core.curate.quality import assess


def _photos(folder, noise_image, count, size=(640, 640)):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        noise_image(size, seed=index).save(folder / f"photo{index:02d}.png")
    return folder


def test_quality_flags_blur_darkness_and_size(noise_image):
    sharp = noise_image()
    assert assess(sharp).passed
    blurred = assess(sharp.filter(ImageFilter.GaussianBlur(6)))
    assert any(reason.startswith("blurry") for reason in blurred.reasons)
    dark = assess(Image.fromarray((np.asarray(sharp) // 8).astype(np.uint8)))
    assert any(reason.startswith("underexposed") for reason in dark.reasons)
    small = assess(noise_image((320, 240)))
    assert small.reasons == ["too small: 320x240, shorter side under 512 px"]


def test_add_copies_normalises_and_captions_with_the_token(project, tmp_path, noise_image):
    folder = _photos(tmp_path / "in", noise_image, 3)
    report = add_sources(project, [folder], angle="front", expression="smiling")
    assert report.dataset == "source/v1"
    assert [r.filename for r in report.added] == ["photo00.png", "photo01.png", "photo02.png"]
    record = report.added[0]
    assert record.caption == "photo of ohwx_char person, front view, smiling"
    assert record.quality["passed"] is True and record.quality["sharpness"] > 25
    assert record.source_file.endswith("photo00.png")
    assert (project.root / "data/source/v1/photo00.png").is_file()


def test_a_corrupt_file_blocks_the_whole_add_and_lists_the_problem(project, tmp_path, noise_image):
    folder = _photos(tmp_path / "in", noise_image, 2)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(CurationError, match="(?s)nothing was added.*broken.jpg.*--skip-invalid"):
        add_sources(project, [folder])
    assert project.versions("source") == []
    report = add_sources(project, [folder], skip_invalid=True)
    assert len(report.added) == 2
    assert "broken.jpg" in report.skipped[0]


def test_duplicates_within_a_batch_and_against_the_dataset(project, tmp_path, noise_image):
    folder = _photos(tmp_path / "in", noise_image, 2)
    noise_image(seed=0).save(folder / "copy_of_0.jpg", quality=100)
    noise_image(seed=0).save(folder / "same_pixels.png")
    with pytest.raises(CurationError, match="same_pixels.*duplicate of .*photo00.png"):
        add_sources(project, [folder / "photo00.png", folder / "same_pixels.png"])
    add_sources(project, [folder / "photo00.png"])
    with pytest.raises(CurationError, match="duplicate of an image already in the dataset"):
        add_sources(project, [folder / "same_pixels.png"])


def test_adding_the_same_folder_again_with_skip_invalid_adds_nothing(project, tmp_path, noise_image):
    folder = _photos(tmp_path / "in", noise_image, 2)
    add_sources(project, [folder])
    again = add_sources(project, [folder], skip_invalid=True)
    assert again.added == [] and len(again.skipped) == 2 and "already in the dataset" in again.skipped[0]
    assert len(project.dataset("source").records) == 2


def test_caption_without_the_token_is_refused(project, tmp_path, noise_image):
    folder = _photos(tmp_path / "in", noise_image, 1)
    with pytest.raises(CurationError, match="does not contain the instance token 'ohwx_char'"):
        add_sources(project, [folder], caption="a man at the beach")
    assert project.versions("source") == []


def test_trigger_placeholder_is_filled(project):
    assert make_caption(project, "[trigger] at the beach", "front", "neutral") == "ohwx_char person at the beach"


def test_mirror_adds_flipped_copies_with_swapped_views(project, tmp_path, noise_image):
    folder = _photos(tmp_path / "in", noise_image, 1)
    report = add_sources(project, [folder], angle="half-left", mirror=True)
    original, flipped = report.added
    assert flipped.angle == "half-right" and "half-right view" in flipped.caption
    assert flipped.parents == [original.id]
    assert flipped.filename == "photo00_mirror.png"
    assert flipped.model_extra["augmentation"] == "mirror"


def test_unknown_paths_and_vocabulary(project, tmp_path):
    with pytest.raises(CurationError, match="does not exist"):
        add_sources(project, [tmp_path / "missing.jpg"])
    with pytest.raises(CurationError, match="unknown angle"):
        add_sources(project, [tmp_path], angle="sideways")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurationError, match="contains no image files"):
        add_sources(project, [tmp_path / "empty"])


def test_check_passes_with_ten_usable_images_over_two_angles(project, tmp_path, noise_image):
    add_sources(project, [_photos(tmp_path / "front", noise_image, 6)], angle="front")
    for index in range(6, 10):
        noise_image(seed=index).save(tmp_path / f"side{index}.png")
    add_sources(project, [tmp_path / f"side{index}.png" for index in range(6, 10)], angle="half-left")
    report = check_sources(project)
    assert report.passed, report.to_json()
    assert [c.passed for c in report.criteria] == [True, True, True, True]


def test_check_fails_and_says_why(project, tmp_path, noise_image):
    add_sources(project, [_photos(tmp_path / "in", noise_image, 3)], angle="front")
    noise_image((300, 300), seed=50).save(tmp_path / "tiny.png")
    add_sources(project, [tmp_path / "tiny.png"], angle="front")
    report = check_sources(project)
    assert not report.passed
    by_name = {c.name: c for c in report.criteria}
    assert by_name["usable images >= 10"].detail == "3 of 4 usable"
    assert not by_name["angles >= 2"].passed
    assert report.problems["tiny.png"][0].startswith("too small")
