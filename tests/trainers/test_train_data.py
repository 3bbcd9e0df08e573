"""Training data: every accepted layout, captions with the token, buckets and a deterministic batch order."""

from __future__ import annotations

import pytest
from PIL import Image


def test_caption_folder_fills_the_trigger(caption_folder):
    from flenwheel.trainers.datasets import read_training_data

    data = read_training_data([str(caption_folder)], "flux", "ohwx_char person")
    assert [item.caption for item in data.items][0] == "photo of ohwx_char person, pose 0"
    assert data.version == "images" and len(data.hash) == 64
    assert {item.size for item in data.items} == {(64, 64), (80, 48), (48, 80)}


def test_uncaptioned_images_are_an_error_unless_a_default_caption_is_set(caption_folder):
    from flenwheel.core.data.errors import DatasetError
    from flenwheel.trainers.datasets import read_training_data

    (caption_folder / "img_0.txt").unlink()
    with pytest.raises(DatasetError, match="img_0.png"):
        read_training_data([str(caption_folder)], "flux", "ohwx_char")
    data = read_training_data([str(caption_folder)], "flux", "ohwx_char", default_caption="a portrait")
    assert data.items[0].caption == "ohwx_char, a portrait"


def test_enriched_dataset_contributes_only_good_images(project, noise_image):
    from flenwheel.trainers.datasets import read_training_data

    enriched = project.create_dataset("enriched")
    with enriched.edit() as edit:
        edit.add_image(
            noise_image((64, 64), 1), stem="a", label="good", prompt="turn head left", filename="good/a.png"
        )
        edit.add_image(
            noise_image((64, 64), 2), stem="b", label="rejected", caption="x", filename="rejected/b.png"
        )
        edit.add_image(noise_image((64, 64), 3), stem="c", caption="unreviewed ohwx_char")
    data = read_training_data([str(enriched.path)], "flux", project.subject)
    assert [(i.image.name, i.caption) for i in data.items] == [("a.png", "ohwx_char person, turn head left")]
    assert data.items[0].origin == "enriched/v1"


def test_empty_training_set_is_a_clear_error(project):
    from flenwheel.core.data.errors import DatasetError
    from flenwheel.trainers.datasets import read_training_data

    enriched = project.create_dataset("enriched")
    with pytest.raises(DatasetError, match="reviewed as 'good'"):
        read_training_data([str(enriched.path)], "flux", project.subject)
    with pytest.raises(DatasetError, match="does not exist"):
        read_training_data([str(project.root / "nowhere")], "flux")


def test_buckets_keep_aspect_and_area():
    from flenwheel.trainers.buckets import fit, make_buckets, nearest_bucket

    buckets = make_buckets(1024, 64)
    assert buckets[0] == (1024, 1024)
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 1024 * 1024 * 1.1 for w, h in buckets)
    assert nearest_bucket((3000, 2000), buckets) == (1216, 832)
    assert nearest_bucket((2000, 3000), buckets) == (832, 1216)
    assert fit(Image.new("RGB", (300, 200)), (96, 64)).size == (96, 64)


def test_batch_order_is_a_function_of_seed_and_step():
    from flenwheel.trainers.batches import BatchPlan

    keys = [(64, 64)] * 5 + [(80, 48)] * 3
    plan = BatchPlan(keys, batch_size=2, world_size=2, seed=7)
    again = BatchPlan(keys, batch_size=2, world_size=2, seed=7)
    assert [plan.batch(s, 0) for s in range(9)] == [again.batch(s, 0) for s in range(9)]
    for step in range(9):
        both = plan.batch(step, 0) + plan.batch(step, 1)
        assert len({keys[i] for i in both}) == 1  # one bucket per global batch
        assert plan.batch(step, 0) != plan.batch(step, 1) or len(set(both)) < 4
    epoch = plan.epoch(0)
    assert sorted({i for batch in epoch for i in batch}) == list(range(8))
    assert plan.epoch(1) != epoch


def test_sideways_stored_portrait_gets_a_portrait_bucket(tmp_path):
    """A phone portrait stored as landscape pixels with EXIF orientation 6 is upright when loaded,
    so its bucket must be a portrait one (otherwise head and feet are cropped)."""
    from flenwheel.trainers.buckets import make_buckets, nearest_bucket
    from flenwheel.trainers.datasets import read_training_data

    folder = tmp_path / "camera"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (1024, 768), (90, 120, 150)).save(folder / "phone.jpg", exif=exif, quality=90)
    (folder / "phone.txt").write_text("photo of [trigger]", encoding="utf-8")
    item = read_training_data([str(folder)], "flux", "ohwx_char").items[0]
    assert item.size == (768, 1024)
    assert nearest_bucket(item.size, make_buckets(1024, 64)) == (896, 1152)
