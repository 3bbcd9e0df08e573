"""Safe image IO: every odd file becomes upright 8-bit RGB, or an error that names the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from flenwheel.core.data.errors import ImageLoadError
from flenwheel.core.data.images import (
    images_to_tensor,
    load_image,
    pixel_hash,
    read_png_record,
    save_png,
    tensor_to_images,
)


def _gradient(width=64, height=48):
    x = np.linspace(0, 255, width, dtype=np.float64)
    return np.tile(x, (height, 1))


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.size == (20, 40)
    top = np.asarray(loaded)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the blue strip is now on top


def test_16_bit_grey_is_scaled_not_clipped_to_white(tmp_path):
    values = (_gradient() * 257).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    loaded = np.asarray(load_image(path))
    assert loaded.dtype == np.uint8 and loaded.shape == (48, 64, 3)
    assert loaded[:, 0].max() < 5 and loaded[:, -1].min() > 250
    assert 100 < loaded.mean() < 160  # a white image would average 255


def test_rgba_is_composited_on_white(tmp_path):
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    path = tmp_path / "clear.png"
    image.save(path)
    assert np.asarray(load_image(path))[5, 5].tolist() == [255, 255, 255]


def test_cmyk_and_palette_become_rgb(tmp_path):
    cmyk = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(cmyk)
    red = np.asarray(load_image(cmyk))[8, 8]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    palette = tmp_path / "palette.gif"
    Image.new("RGB", (8, 8), (0, 128, 0)).convert("P").save(palette)
    assert load_image(palette).mode == "RGB"


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b"this is not a picture", "not an image")],
)
def test_unreadable_files_name_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=f"bad.png.*{problem}"):
        load_image(path)


def test_truncated_file_is_refused_even_when_another_library_allows_truncation(tmp_path, noise_image):
    good = tmp_path / "full.jpg"
    noise_image((256, 256)).save(good, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # what `import face_recognition` does process-wide
    try:
        with pytest.raises(ImageLoadError, match="cut.jpg.*truncated"):
            load_image(cut)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_pixel_hash_ignores_format_and_metadata(tmp_path, noise_image):
    image = noise_image((32, 32))
    save_png(image, tmp_path / "a.png", {"id": "x"})
    save_png(image, tmp_path / "b.png", {"id": "y", "other": 1})
    assert pixel_hash(load_image(tmp_path / "a.png")) == pixel_hash(load_image(tmp_path / "b.png"))
    assert pixel_hash(image) != pixel_hash(noise_image((32, 32), seed=1))


def test_png_carries_its_record(tmp_path, noise_image):
    path = save_png(noise_image((16, 16)), tmp_path / "x.png", {"id": "abc", "prompt": "portrait of ohwx_char"})
    assert read_png_record(path) == {"id": "abc", "prompt": "portrait of ohwx_char"}


def test_comfy_tensor_round_trip_is_lossless(noise_image):
    images = [noise_image((24, 16), seed=1), noise_image((24, 16), seed=2)]
    tensor = images_to_tensor(images)
    assert tensor.shape == (2, 16, 24, 3) and tensor.dtype == torch.float32
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    back = tensor_to_images(tensor)
    assert [np.asarray(b).tolist() for b in back] == [np.asarray(i).tolist() for i in images]


def test_mixed_sizes_make_one_batch(solid_image):
    images = [solid_image((20, 10), (255, 0, 0)), solid_image((10, 30), (0, 0, 255))]
    padded = images_to_tensor(images, "pad")
    assert padded.shape == (2, 30, 20, 3)
    assert padded[0, 0, 0].tolist() == [0.0, 0.0, 0.0]  # letterbox bar
    assert padded[0, 15, 10].tolist() == [1.0, 0.0, 0.0]
    cropped = images_to_tensor(images, "crop")
    assert cropped.shape == (2, 30, 20, 3)
    assert cropped[0, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_tensor_with_alpha_or_single_channel_converts():
    rgba = torch.ones((1, 4, 4, 4))
    grey = torch.zeros((4, 4, 1))
    assert tensor_to_images(rgba)[0].mode == "RGB"
    assert np.asarray(tensor_to_images(grey)[0]).max() == 0
    with pytest.raises(ValueError, match="IMAGE tensor"):
        tensor_to_images(torch.zeros((2, 3)))
