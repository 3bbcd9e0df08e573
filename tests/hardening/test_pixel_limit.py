"""Decompression bombs: a picture above the pixel limit is refused from its header, wherever it enters."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli
from flenwheel.core.data.errors import DatasetError, FlenwheelError, ImageLoadError
from flenwheel.core.data.images import DEFAULT_MAX_PIXELS, image_size, load_image, load_image_bytes

SIZE = (7000, 7000)  # 49 megapixels in a 6 kB PNG; decoding it as RGB would take 147 MB


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", SIZE).save(path)
    assert path.stat().st_size < 20_000
    return path


def _says_too_big(text: str, name: str) -> None:
    assert name in text
    assert "7000x7000 is 49.0 megapixels, above the limit of 40 megapixels" in text
    assert "FLENWHEEL_MAX_PIXELS" in text


def test_the_safe_loader_refuses_a_bomb_before_decoding(bomb, monkeypatch):
    assert DEFAULT_MAX_PIXELS == 40_000_000
    opened = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: opened.append(self.size) or original(self))
    with pytest.raises(ImageLoadError) as caught:
        load_image(bomb)
    _says_too_big(str(caught.value), str(bomb))
    assert SIZE not in opened
    with pytest.raises(ImageLoadError) as caught:
        load_image_bytes(bomb.read_bytes(), "upload.png")
    _says_too_big(str(caught.value), "upload.png")
    with pytest.raises(ImageLoadError):
        image_size(bomb)


def test_the_limit_is_a_setting(tmp_path, monkeypatch, noise_image):
    path = tmp_path / "small.png"
    noise_image((100, 100)).save(path)
    monkeypatch.setenv("FLENWHEEL_MAX_PIXELS", "9999")
    with pytest.raises(ImageLoadError, match="above the limit of 0.009999 megapixels"):
        load_image(path)
    monkeypatch.setenv("FLENWHEEL_MAX_PIXELS", "10000")
    assert load_image(path).size == (100, 100)
    monkeypatch.setenv("FLENWHEEL_MAX_PIXELS", "lots")
    with pytest.raises(FlenwheelError, match="FLENWHEEL_MAX_PIXELS='lots' is not a positive number"):
        load_image(path)


def test_source_add_refuses_a_bomb_and_adds_nothing(project, bomb, tmp_path, noise_image):
    good = tmp_path / "good.png"
    noise_image((256, 256)).save(good)
    result = CliRunner().invoke(cli, ["source", "add", str(project.root), str(good), str(bomb)])
    assert result.exit_code != 0
    _says_too_big(result.output, "bomb.png")
    assert not project.versions("source") or not project.dataset("source", "v1").records
    assert CliRunner().invoke(cli, ["verify", str(project.root)]).exit_code == 0


def test_identity_score_names_the_bomb(faces, bomb):
    pytest.importorskip("face_recognition")
    result = CliRunner().invoke(cli, ["identity", "score", "--ref", str(faces / "obama" / "obama.jpg"), str(bomb)])
    _says_too_big(result.output, "bomb.png")


def test_dataset_loader_refuses_a_bomb_in_a_dataset(project, bomb, noise_image):
    from flenwheel.core.data.handles import DatasetHandle

    dataset = project.create_dataset("source")
    record = dataset.add_image(noise_image((64, 64)), stem="a")
    file = dataset.path / record.filename
    original = file.read_bytes()
    file.write_bytes(bomb.read_bytes())
    with pytest.raises(ImageLoadError) as caught:
        DatasetHandle(dataset).load_images()
    _says_too_big(str(caught.value), record.filename)
    file.write_bytes(original)
    assert CliRunner().invoke(cli, ["verify", str(project.root)]).exit_code == 0


def test_the_trainer_refuses_a_bomb_in_its_caption_folder(tmp_path, bomb, noise_image):
    from flenwheel.trainers.datasets import read_training_data

    folder = tmp_path / "captions"
    folder.mkdir()
    noise_image((64, 64)).save(folder / "a.png")
    (folder / "a.txt").write_text("photo of ohwx_char")
    (folder / "bomb.png").write_bytes(bomb.read_bytes())
    (folder / "bomb.txt").write_text("photo of ohwx_char")
    with pytest.raises(DatasetError) as caught:
        read_training_data([str(folder)], "flux", token="ohwx_char")
    _says_too_big(str(caught.value), "bomb.png")
