"""Safe image IO shared by every stage.

Every image that enters the flywheel goes through ``load_image``: it decodes the whole file (so a
truncated download fails here with the file's name, not later inside a model), applies the EXIF
orientation (phone photos are often stored sideways), and converts any mode to 8-bit RGB without
the usual traps: 16-bit greys are scaled (``convert('RGB')`` clips them to white), transparency
is composited on white, CMYK and palettes are converted.

Pictures above ``max_pixels()`` (40 megapixels unless ``FLENWHEEL_MAX_PIXELS`` says otherwise) are
refused from their header, before any pixel is decoded: a 1 MB PNG can claim 12000x12000 pixels
and cost minutes and gigabytes per command (a decompression bomb). The camera photos a character
LoRA starts from are 12-24 megapixels, so the default leaves room for them.

It also converts to and from ComfyUI's IMAGE tensors ([B, H, W, C] float32 in 0..1) and writes
PNGs that carry their record as text metadata, so an image keeps its lineage when it is copied
out of the project.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from .atomic import atomic_write_bytes
from .errors import FlenwheelError, ImageLoadError

if TYPE_CHECKING:
    import torch

PNG_RECORD_KEY = "flenwheel"
#: The one rule for which files are images, by suffix (folders, CLI) and media type (browser uploads).
IMAGE_MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                     ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif"}
IMAGE_SUFFIXES = tuple(IMAGE_MEDIA_TYPES)
MAX_PIXELS_ENV = "FLENWHEEL_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 40_000_000
EXIF_ORIENTATION = 0x0112

_truncation_lock = threading.Lock()


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    """Refuse truncated files even if another library (face_recognition) enabled the global flag."""
    with _truncation_lock:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def max_pixels() -> int:
    """The largest picture (width x height) any stage decodes; ``FLENWHEEL_MAX_PIXELS`` overrides it."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value <= 0:
        raise FlenwheelError(f"{MAX_PIXELS_ENV}={raw!r} is not a positive number of pixels (default "
                             f"{DEFAULT_MAX_PIXELS}); fix or unset it")
    return value


def check_pixels(name: str | Path, size: tuple[int, int], limit: int | None = None) -> None:
    """Refuse a picture above the pixel limit, naming it, its size and the limit."""
    limit = max_pixels() if limit is None else limit
    width, height = size
    if width * height > limit:
        raise ImageLoadError(name, f"{width}x{height} is {width * height / 1e6:.1f} megapixels, above the limit of "
                                   f"{limit / 1e6:g} megapixels; shrink it, or raise {MAX_PIXELS_ENV}")


def _decode(name: str | Path, source: str | Path | io.BytesIO) -> Image.Image:
    limit = max_pixels()
    try:
        with _strict_truncation():
            image = Image.open(source)
            check_pixels(name, image.size, limit)
            image.load()
    except UnidentifiedImageError:
        raise ImageLoadError(name, "not an image Pillow can read (unknown or corrupt format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(name, f"too many pixels ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        problem = "the file is truncated or corrupt" if "truncated" in str(exc).lower() else str(exc)
        raise ImageLoadError(name, problem) from None
    return image


def open_image(path: str | Path) -> Image.Image:
    """Decode a whole image file, raising ``ImageLoadError`` that names the file and the problem."""
    file = Path(path)
    if not file.exists():
        raise ImageLoadError(file, "no such file")
    if file.is_dir():
        raise ImageLoadError(file, "it is a folder, not an image file")
    if file.stat().st_size == 0:
        raise ImageLoadError(file, "the file is empty (0 bytes)")
    return _decode(file, file)


def image_size(path: str | Path) -> tuple[int, int]:
    """The upright width and height from the header alone, refused above the pixel limit.

    Upright as the loader's pixels are: a phone portrait stored sideways (EXIF orientation 5-8)
    is a portrait, or a trainer's bucket crops its head and feet away.
    """
    try:
        with Image.open(path) as image:
            size = image.size
            turned = image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    except (OSError, ValueError) as exc:
        raise ImageLoadError(path, str(exc)) from None
    check_pixels(path, size)
    return (size[1], size[0]) if turned else size


def to_rgb8(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling high bit depths instead of clipping them."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if array.max() <= 1.0 else 255.0
        grey = np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _upright_rgb(image: Image.Image, name: str | Path) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception as exc:  # malformed EXIF must not hide an otherwise good picture
        raise ImageLoadError(name, f"unreadable EXIF orientation ({exc})") from None
    return to_rgb8(upright if upright is not None else image)


def load_image(path: str | Path) -> Image.Image:
    """Load a file as an upright 8-bit RGB image (the one entry point every stage uses)."""
    return _upright_rgb(open_image(path), path)


def load_image_bytes(data: bytes, name: str) -> Image.Image:
    """``load_image`` for bytes already in memory (a browser upload), decoded without a scratch file."""
    if not data:
        raise ImageLoadError(name, "the file is empty (0 bytes)")
    return _upright_rgb(_decode(name, io.BytesIO(data)), name)


def pixel_hash(image: Image.Image) -> str:
    """Content id of an image: sha256 over its size and RGB pixels, independent of file format and metadata.

    The same photo saved as JPEG-decoded PNG with different text chunks keeps its id, so lineage and
    review decisions follow the picture, not the file.
    """
    rgb = to_rgb8(image)
    digest = hashlib.sha256()
    digest.update(f"{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def png_bytes(image: Image.Image, record: dict[str, Any] | None = None, compress_level: int = 4,
              text: dict[str, Any] | None = None) -> bytes:
    """Encode a PNG in memory, with the record as an iTXt chunk so the file carries its lineage.

    ``text`` adds JSON text chunks beside it, as ComfyUI's SaveImage writes ``prompt`` and
    ``workflow``, so dropping the file on ComfyUI reopens the graph that made it.
    """
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        if key != PNG_RECORD_KEY:
            info.add_text(key, json.dumps(value))
    if record is not None:
        info.add_itxt(PNG_RECORD_KEY, json.dumps(record, ensure_ascii=False, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def save_png(image: Image.Image, path: str | Path, record: dict[str, Any] | None = None) -> Path:
    """Write a PNG atomically; a crash leaves either no file or a whole one."""
    destination = Path(path)
    atomic_write_bytes(destination, png_bytes(to_rgb8(image), record))
    return destination


def read_png_record(path: str | Path) -> dict[str, Any] | None:
    """Return the record a FLENwheel PNG carries, or None for other files."""
    with Image.open(path) as image:
        text = getattr(image, "text", {}) or {}
        raw = text.get(PNG_RECORD_KEY)
    return json.loads(raw) if raw else None


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden and temp files skipped)."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def pil_to_array(image: Image.Image) -> np.ndarray:
    """A contiguous uint8 HxWx3 array, the only layout dlib and most CV code accept."""
    return np.ascontiguousarray(np.asarray(to_rgb8(image), dtype=np.uint8))


BatchPolicy = Literal["pad", "crop", "stretch"]


def _fit(image: Image.Image, size: tuple[int, int], policy: BatchPolicy) -> Image.Image:
    if image.size == size:
        return image
    if policy == "stretch":
        return image.resize(size, Image.Resampling.LANCZOS)
    if policy == "crop":
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    return ImageOps.pad(image, size, Image.Resampling.LANCZOS, color=(0, 0, 0))


def images_to_tensor(images: Sequence[Image.Image], policy: BatchPolicy = "pad") -> torch.Tensor:
    """Stack PIL images into a ComfyUI IMAGE batch [B, H, W, 3] float32 in 0..1.

    ComfyUI batches must share one size. Mixed sizes are brought to the largest width and height:
    ``pad`` letterboxes (no distortion, default), ``crop`` fills and centre-crops, ``stretch`` resizes.
    """
    import torch

    if not images:
        raise ValueError("cannot build an IMAGE batch from zero images")
    size = (max(im.width for im in images), max(im.height for im in images))
    arrays = [np.asarray(_fit(to_rgb8(im), size, policy), dtype=np.float32) / 255.0 for im in images]
    return torch.from_numpy(np.stack(arrays))


def tensor_to_images(batch: torch.Tensor) -> list[Image.Image]:
    """Convert a ComfyUI IMAGE tensor ([B,H,W,C] or [H,W,C], float 0..1) to RGB PIL images."""
    tensor = batch.detach().cpu()
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or tensor.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE tensor [B,H,W,C], got shape {tuple(tensor.shape)}")
    arrays = (tensor.float().clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)
    images = []
    for array in arrays:
        if array.shape[-1] == 1:
            images.append(Image.fromarray(array[..., 0], "L").convert("RGB"))
        else:
            images.append(to_rgb8(Image.fromarray(array, "RGBA" if array.shape[-1] == 4 else "RGB")))
    return images
