"""The optional ArcFace identity model: loading, alignment and scoring with a random ONNX model of its shape.

No ArcFace weights exist offline, so nothing here says how well it recognises people: these tests check
that a file shaped like insightface's ``w600k_r50.onnx`` is found, loaded, fed the way insightface feeds
it (aligned RGB crop, ``(x - 127.5) / 127.5``, NCHW) and scored, and that a missing file or runtime falls
back to face_recognition with a line saying what to do.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

pytest.importorskip("onnxruntime", reason="the ArcFace model needs onnxruntime (pip install onnxruntime onnx)")
pytest.importorskip("onnx", reason="the ArcFace model needs onnx (pip install onnxruntime onnx)")

from flenwheel.core.data.errors import FlenwheelError  # noqa: E402
from flenwheel.core.identity.arcface import (  # noqa: E402
    ARCFACE_DST,
    ArcFaceModel,
    align_face,
    five_points,
    resolve,
    similarity_transform,
)
from flenwheel.core.testing.tiny_arcface import build_tiny_arcface  # noqa: E402

FILE = "w600k_r50.onnx"


@pytest.fixture(scope="module")
def insightface(tmp_path_factory):
    """A ComfyUI-style ``models/insightface`` folder holding a random model where buffalo_l keeps its file."""
    folder = tmp_path_factory.mktemp("comfy") / "models" / "insightface"
    weights = build_tiny_arcface(folder / "models" / "buffalo_l" / FILE, seed=3)
    return folder, weights


def _rotate(points, angle_deg, scale, shift):
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return scale * points @ rotation.T + np.asarray(shift)


def test_the_similarity_transform_undoes_a_known_one():
    points = _rotate(ARCFACE_DST, 25, 3.0, (200, 150))
    matrix = similarity_transform(points, ARCFACE_DST)
    mapped = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - ARCFACE_DST).max() < 1e-9


def test_alignment_puts_the_five_points_where_insightface_expects_them():
    """Coloured dots at a rotated, scaled copy of the template land on arcface_dst in the 112 px crop."""
    points = _rotate(ARCFACE_DST, -20, 2.5, (180, 90))
    image = Image.new("RGB", (500, 500), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), colour in zip(points, colours, strict=True):
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=colour)
    crop = np.asarray(align_face(image, points)).astype(float)
    assert crop.shape == (112, 112, 3)
    for (x, y), colour in zip(ARCFACE_DST, colours, strict=True):
        match = np.all(np.abs(crop - colour) < 60, axis=2)
        ys, xs = np.nonzero(match)
        assert len(xs) > 4 and abs(xs.mean() - x) < 1.0 and abs(ys.mean() - y) < 1.0, colour


def _warp_affine_reference(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """OpenCV's warpAffine as insightface's norm_crop calls it (bilinear, pixel (x, y) at coordinate (x, y),
    black outside), written out in numpy."""
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(float)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    padded = np.pad(image.astype(float), ((1, 2), (1, 2), (0, 0)))

    def at(y, x):
        return padded[np.clip(y + 1, 0, padded.shape[0] - 1), np.clip(x + 1, 0, padded.shape[1] - 1)]

    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


def test_the_crop_matches_an_opencv_style_warp_of_the_same_transform():
    """Pixel for pixel (within rounding) what insightface's norm_crop (cv2.warpAffine) would give."""
    rng = np.random.default_rng(1)
    smooth = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).resize((400, 400))
    points = _rotate(ARCFACE_DST, 15, 2.2, (120, 60))
    ours = np.asarray(align_face(smooth, points)).astype(float)
    reference = _warp_affine_reference(np.asarray(smooth), similarity_transform(points, ARCFACE_DST), 112)
    inside = reference.sum(axis=2) > 0
    assert np.abs(ours - reference)[inside].max() <= 2.0


def test_five_points_from_dlib_68_landmarks():
    landmarks = [(float(i), float(2 * i)) for i in range(68)]
    points = five_points(landmarks)
    assert points[0].tolist() == [38.5, 77.0] and points[1].tolist() == [44.5, 89.0]
    assert points[2].tolist() == [30.0, 60.0] and points[3][0] == 48 and points[4][0] == 54
    with pytest.raises(FlenwheelError, match="cannot align a face from 5 landmarks"):
        five_points(landmarks[:5])


@pytest.mark.parametrize("normalises", [False, True])
def test_the_embedding_is_the_network_output_of_the_normalised_rgb_crop(tmp_path, normalises):
    """Recomputed with torch from the same weights: RGB order, (x - 127.5) / 127.5, NCHW, unit length."""
    import torch

    file = tmp_path / FILE
    weights = build_tiny_arcface(file, seed=5, normalises_input=normalises)
    model = ArcFaceModel(file)
    assert (model.mean, model.std) == ((0.0, 1.0) if normalises else (127.5, 127.5))
    rng = np.random.default_rng(0)
    crop = Image.fromarray(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
    x = (torch.from_numpy(np.asarray(crop, dtype=np.float32)).permute(2, 0, 1)[None] - 127.5) / 127.5
    hidden = torch.relu(torch.nn.functional.conv2d(x, torch.from_numpy(weights["conv_w"]),
                                                   torch.from_numpy(weights["conv_b"]), stride=2, padding=1))
    expected = hidden.mean(dim=(2, 3)) @ torch.from_numpy(weights["fc_w"]).T + torch.from_numpy(weights["fc_b"])
    expected = (expected / expected.norm()).numpy()[0]
    assert np.allclose(model.embed(crop), expected, atol=1e-5)


def test_a_file_that_is_not_arcface_shaped_is_refused_with_its_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    garbage = tmp_path / "broken.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(FlenwheelError, match="broken.onnx is not a usable ONNX model"):
        ArcFaceModel(garbage)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])])
    small = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(small))
    with pytest.raises(FlenwheelError, match="small.onnx is not an ArcFace-style model: it needs one 1x3x112x112"):
        ArcFaceModel(small)


def test_the_model_is_found_in_the_insightface_folder_or_identity_falls_back(insightface, tmp_path, monkeypatch):
    folder, _ = insightface
    found = resolve(FILE, tmp_path, [folder])
    assert found.path == folder / "models" / "buffalo_l" / FILE and found.name == FILE
    assert resolve(str(found.path), tmp_path).path == found.path, "a path works as well"
    missing = resolve("glintr100.onnx", tmp_path, [folder])
    assert missing.path is None and missing.name == "face_recognition"
    assert f"put glintr100.onnx in {folder}" in missing.note and "measured with face_recognition" in missing.note
    assert resolve("face_recognition", tmp_path).path is None
    for hostile in ("*.onnx", "w600k_r5?.onnx", "/", "bad\x00name.onnx", "../nowhere/model.onnx"):
        assert resolve(hostile, tmp_path, [folder]).path is None, hostile
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    no_runtime = resolve(FILE, tmp_path, [folder])
    assert no_runtime.path is None and "needs onnxruntime: install it with:" in no_runtime.note
    assert "pip install onnxruntime onnx" in no_runtime.note


@pytest.fixture(scope="module")
def grace(tmp_path_factory):
    """A real portrait shipped with matplotlib, as the character's only source."""
    from matplotlib import cbook

    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.data.project import Project

    pytest.importorskip("face_recognition", reason="the card finds faces and landmarks with face_recognition")
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    project = Project.init(tmp_path_factory.mktemp("grace") / "project", name="Grace Hopper")
    add_sources(project, [path])
    return project, Image.open(path).convert("RGB")


def test_the_card_scores_identity_with_the_configured_model(grace, insightface):
    """Configured and present: the card's identity check is the ArcFace cosine distance, and says so."""
    from flenwheel.core.benchmark.checks import CardScorer
    from flenwheel.core.benchmark.model_card import load_card

    project, photo = grace
    folder, _ = insightface
    model_file = folder / "models" / "buffalo_l" / FILE
    card = load_card(limits={"identity_model": str(model_file)})
    scorer = CardScorer.from_project(project, card, checks="identity")
    cell = next(c for c in card.cells(project.subject, project.token) if c.id == "front-neutral")
    same = scorer.score(photo, cell)
    assert same["checks"]["identity"].status == "pass" and same["checks"]["identity"].value < 1e-4
    assert same["identity"]["detector"] == f"mediapipe+{FILE}" and same["identity"]["tolerance"] == 0.55
    mirrored = scorer.score(ImageOps.mirror(photo), cell)["checks"]["identity"].value
    assert 0 < mirrored <= 2, "a random network gives a mirrored face some other embedding"
    settings = scorer.settings_json()
    assert settings["identity_model"] == f"ArcFace-class ONNX model {model_file}"
    assert scorer.fingerprint() != CardScorer.from_project(project, load_card(), checks="identity").fingerprint()


def test_a_configured_model_that_is_missing_falls_back_and_says_where_to_put_it(grace):
    from flenwheel.core.benchmark.checks import CardScorer
    from flenwheel.core.benchmark.model_card import load_card

    project, photo = grace
    card = load_card(limits={"identity_model": FILE})
    scorer = CardScorer.from_project(project, card, checks="identity")
    assert scorer.arcface is None and f"identity model {FILE} not found: put {FILE} in" in scorer.identity_model
    assert "models/insightface" in scorer.identity_model
    cell = next(c for c in card.cells(project.subject, project.token) if c.id == "front-neutral")
    result = scorer.score(photo, cell)
    assert result["checks"]["identity"].status == "pass" and result["identity"]["detector"] == "mediapipe"
