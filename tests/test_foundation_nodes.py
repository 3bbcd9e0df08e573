"""The project, dataset and curation nodes, called the way ComfyUI calls them."""

from __future__ import annotations

import pytest

import flenwheel
from flenwheel.core.data.handles import DatasetHandle
from flenwheel.core.data.images import images_to_tensor
from flenwheel.core.data.project import Project


def node(name):
    return flenwheel.NODE_CLASS_MAPPINGS[name]()


def test_project_node_creates_then_opens(tmp_path):
    open_project = node("FlenwheelProject").open
    project, summary = open_project(str(tmp_path / "char"), True, "Ada", "ohwx_ada", "woman")
    assert isinstance(project, Project) and (tmp_path / "char" / "flenwheel.json").is_file()
    assert "ohwx_ada woman" in summary
    again, _ = open_project(str(tmp_path / "char"), False, "ignored", "ignored", "ignored")
    assert again.config.name == "Ada"


def test_project_node_without_create_reports_a_missing_project(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        node("FlenwheelProject").open(str(tmp_path / "none"), False, "A", "ohwx_char", "person")


def test_curate_node_takes_a_folder_and_an_image_batch(project, tmp_path, noise_image):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(3):
        noise_image(seed=index).save(folder / f"p{index}.png")
    batch = images_to_tensor([noise_image(seed=10), noise_image(seed=11)])
    handle, images, report = node("FlenwheelCurateSources").curate(
        project, str(folder), "front", "neutral", "", False, False, images=batch)
    assert isinstance(handle, DatasetHandle) and len(handle) == 5
    assert images.shape == (5, 640, 640, 3)
    assert "FAIL usable images >= 10: 0 of 5 usable" in report
    assert "not usable: comfy_000.png: no face" in report  # noise is never a face


def test_load_dataset_node_outputs_batch_handle_and_captions(project, tmp_path, noise_image):
    from flenwheel.core.curate.curation import add_sources

    noise_image((640, 640), seed=1).save(tmp_path / "a.png")
    noise_image((512, 768), seed=2).save(tmp_path / "b.png")
    add_sources(project, [tmp_path / "a.png", tmp_path / "b.png"], angle="front")
    images, handle, captions = node("FlenwheelLoadDataset").load(project, "source", "latest", "pad")
    assert images.shape == (2, 768, 640, 3)
    assert handle.label == "source/v1"
    assert captions.splitlines() == ["photo of ohwx_char person, front view"] * 2
    with pytest.raises(ValueError, match="nothing to load"):
        node("FlenwheelLoadDataset").load(project, "source", "v1", "pad", label="good")
