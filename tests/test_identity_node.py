"""FLENwheel Face Identity Filter node: IMAGE batches, dataset handles, projects, progress, registration."""

from __future__ import annotations

import json

import pytest
from PIL import Image

pytest.importorskip("face_recognition")

from flenwheel.core.data.errors import FlenwheelError  # noqa: E402
from flenwheel.core.data.handles import DatasetHandle  # noqa: E402
from flenwheel.core.data.images import images_to_tensor, load_image  # noqa: E402
from flenwheel.nodes import identity_node, load_nodes  # noqa: E402
from flenwheel.nodes.identity_node import FlenwheelFaceIdentityFilter  # noqa: E402

DEFAULTS = {"tolerance": 0.6, "policy": "largest", "detect_side": 512, "detector": "hog"}


@pytest.fixture(scope="module")
def pictures(faces) -> dict[str, Image.Image]:
    result = {}
    for name in ("obama/obama.jpg", "obama/obama3.jpg", "obama/obama4.jpg", "biden/biden2.jpg"):
        image = load_image(faces / name)
        image.thumbnail((480, 480), Image.Resampling.LANCZOS)
        result[name.split("/")[1].split(".")[0]] = image
    return result


@pytest.fixture
def progress_calls(monkeypatch):
    calls = []

    def fake(total):
        return lambda done, total_, preview=None: calls.append((done, total_, preview is not None))

    monkeypatch.setattr(identity_node, "comfy_progress", fake)
    return calls


def test_node_is_registered_and_documented():
    classes, names = load_nodes()
    node = classes["FlenwheelFaceIdentityFilter"]
    assert names["FlenwheelFaceIdentityFilter"] == "FLENwheel Face Identity Filter"
    assert node.CATEGORY.startswith("FLENwheel/") and node.DESCRIPTION
    spec = node.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, (_, options) in spec[group].items():
            assert options.get("tooltip"), name
    assert node.RETURN_TYPES == ("IMAGE", "IMAGE", "STRING", "FLENWHEEL_DATASET")


def test_image_batch_against_reference_images(pictures, progress_calls, noise_image):
    batch = images_to_tensor([pictures["obama4"], pictures["biden2"], noise_image((300, 300))])
    refs = images_to_tensor([pictures["obama"], pictures["obama3"]])
    passed, rejected, scores, dataset = FlenwheelFaceIdentityFilter().filter(
        **DEFAULTS, images=batch, reference_images=refs
    )
    assert passed.shape[0] == 1 and rejected.shape[0] == 2 and dataset is None
    rows = json.loads(scores)["images"]
    assert [r["match"] for r in rows] == [True, False, False]
    assert rows[2]["reason"] == "no face" and rows[1]["reason"].startswith("distance")
    assert [c[0] for c in progress_calls] == [1, 2, 3] and all(c[2] for c in progress_calls)


def test_empty_side_of_the_split_blocks_instead_of_an_empty_batch(pictures):
    batch = images_to_tensor([pictures["obama4"]])
    passed, rejected, _, _ = FlenwheelFaceIdentityFilter().filter(
        **DEFAULTS, images=batch, reference_images=images_to_tensor([pictures["obama"]])
    )
    assert passed.shape[0] == 1 and rejected is None  # None outside ComfyUI, an ExecutionBlocker inside


def test_dataset_handle_with_project_sources_as_references(project, pictures, progress_calls):
    sources = project.create_dataset("source")
    for stem in ("obama", "obama3"):
        sources.add_image(pictures[stem], stem=stem)
    synthetic = project.create_dataset("synthetic")
    for seed, stem in enumerate(("obama4", "biden2")):
        synthetic.add_image(pictures[stem], stem=stem, prompt="photo", seed=seed)
    passed, rejected, scores, handle = FlenwheelFaceIdentityFilter().filter(
        **DEFAULTS, dataset=DatasetHandle(synthetic)
    )
    assert passed.shape[0] == 1 and rejected.shape[0] == 1
    assert [r.filename for r in handle.records()] == ["obama4.png"]
    assert (synthetic.path / "filtered/obama4.png").is_file()
    report = json.loads(scores)
    assert report["kept"] == 1 and report["references"]["names"] == ["obama.png", "obama3.png"]
    assert len(progress_calls) == 2
    record = next(r for r in synthetic.records if r.filename == "biden2.png")
    assert record.scores["identity"]["match"] is False and record.filtered is None


def test_image_batch_with_a_project_is_stored_then_filtered(project, pictures, faces):
    folder = faces / "obama"
    batch = images_to_tensor([pictures["obama4"], pictures["biden2"]])
    node = FlenwheelFaceIdentityFilter()
    _, _, _, handle = node.filter(**DEFAULTS, images=batch, project=project, reference_folder=str(folder))
    synthetic = project.dataset("synthetic")
    assert len(synthetic.records) == 2 and len(handle.records()) == 1
    assert len(list((synthetic.path / "filtered").iterdir())) == 1
    node.filter(**DEFAULTS, images=batch, project=project, reference_folder=str(folder))
    assert len(project.dataset("synthetic").records) == 2  # the same batch again adds nothing


def test_bad_wiring_is_a_clear_error(pictures, tmp_path):
    node = FlenwheelFaceIdentityFilter()
    batch = images_to_tensor([pictures["obama4"]])
    with pytest.raises(FlenwheelError, match="exactly one of 'images' or 'dataset'"):
        node.filter(**DEFAULTS)
    with pytest.raises(FlenwheelError, match="no references"):
        node.filter(**DEFAULTS, images=batch)
    with pytest.raises(FlenwheelError, match="does not exist"):
        node.filter(**DEFAULTS, images=batch, reference_folder=str(tmp_path / "nowhere"))

