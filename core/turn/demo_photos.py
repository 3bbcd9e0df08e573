"""Where the demo's character comes from: a photo an installed package ships, or the user's own folder.

The repository ships no photographs taken from other repositories (DESIGN.md section 7), so the
default demo character is built at run time from a photo that an installed dependency carries:
matplotlib's ``mpl-data/sample_data/grace_hopper.jpg``, the official U.S. Navy portrait of
Commodore Grace M. Hopper (1984), a work of the U.S. federal government and so in the public
domain. One photo is one view; the demo writes a few honest variants of it (crops, framing, light,
a small copy that shows the "too small" check) and mirrors them, which gives step 1.1 enough
usable images but only the front view: the demo says so and goes on.

``flenwheel demo OUT --photos DIR`` takes the user's own 10-20 photos instead, which is what a new
user wants to try first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from ..data.errors import FlenwheelError
from ..data.images import IMAGE_SUFFIXES, list_image_files, load_image, save_png

PACKAGED_PHOTO = "grace_hopper.jpg"
PACKAGED_LICENCE = ("Grace Hopper, official U.S. Navy photograph (1984), public domain as a work of the U.S. "
                    "federal government; read at run time from matplotlib's sample data ({path})")
#: The face box of the packaged photo (left, top, right, bottom), as face_recognition's HOG finds it.
FACE_BOX = (180, 139, 366, 325)


@dataclass
class DemoCharacter:
    """The demo's sources: what to curate, who it is and under which licence, and what step 1.1 will say."""

    name: str
    licence: str
    sources: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def packaged_photo() -> Path:
    """The path of the photo matplotlib ships (a dependency of the pack), or one clear error."""
    from matplotlib import cbook

    try:
        path = Path(cbook.get_sample_data(PACKAGED_PHOTO, asfileobj=False))
    except (OSError, ValueError) as exc:
        raise FlenwheelError(f"matplotlib's sample photo {PACKAGED_PHOTO} is missing ({exc}); reinstall matplotlib, "
                             "or run the demo on your own photos: flenwheel demo OUT --photos DIR") from None
    if not path.is_file():
        raise FlenwheelError(f"matplotlib's sample photo is missing ({path}); reinstall matplotlib, or run the demo "
                             "on your own photos: flenwheel demo OUT --photos DIR")
    return path


def _closeup(photo: Image.Image) -> Image.Image:
    left, top, right, bottom = FACE_BOX
    cx, cy, half = (left + right) // 2, (top + bottom) // 2, 170
    return photo.crop((cx - half, cy - half, cx + half, cy + half)).resize((640, 640), Image.Resampling.LANCZOS)


def _wide(photo: Image.Image) -> Image.Image:
    return ImageOps.pad(photo, (768, 768), Image.Resampling.LANCZOS, color=(92, 128, 184), centering=(0.5, 1.0))


def _tilted(photo: Image.Image) -> Image.Image:
    turned = photo.rotate(7, Image.Resampling.BICUBIC, fillcolor=(92, 128, 184))
    return turned.resize((560, 656), Image.Resampling.LANCZOS)


def _warm(photo: Image.Image) -> Image.Image:
    warmer = ImageEnhance.Color(photo).enhance(1.3)
    return ImageEnhance.Brightness(warmer).enhance(1.08).resize((600, 703), Image.Resampling.LANCZOS)


def _small(photo: Image.Image) -> Image.Image:
    return photo.resize((256, 300), Image.Resampling.LANCZOS)


#: (file name, what it shows, how it is made). Every variant is the same front view of one person.
VARIANTS: tuple[tuple[str, str, Callable[[Image.Image], Image.Image]], ...] = (
    ("hopper_portrait.png", "the photo as shipped", lambda photo: photo),
    ("hopper_closeup.png", "a head-and-shoulders close-up", _closeup),
    ("hopper_wide.png", "a wider framing", _wide),
    ("hopper_tilted.png", "a slight head tilt", _tilted),
    ("hopper_warm.png", "warmer, brighter light", _warm),
    ("hopper_small.png", "a copy too small to train on (shows step 1.1's size check)", _small),
)


def packaged_character(folder: Path) -> DemoCharacter:
    """Write the variants of the packaged photo into ``folder`` and list them as mirrored front-view sources."""
    path = packaged_photo()
    photo = load_image(path)
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for name, _, make in VARIANTS:
        target = folder / name
        save_png(make(photo), target)
        sources.append({"path": str(target), "angle": "front", "expression": "neutral", "mirror": True})
    notes = [f"demo character: {len(VARIANTS)} variants of one photo in {folder}, each mirrored; one photo is one "
             "view, so step 1.1's 'angles >= 2' fails and the demo goes on anyway (sources.require_check: false)"]
    return DemoCharacter("Grace Hopper (demo character)", PACKAGED_LICENCE.format(path=path), sources, notes)


def own_character(folder: Path) -> DemoCharacter:
    """The user's photos in ``folder`` (not its subfolders), mirrored like the packaged ones, views untagged."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FlenwheelError(f"--photos {folder}: no such folder; give the folder that holds your 10-20 photos")
    photos = list_image_files(folder)
    if not photos:
        raise FlenwheelError(f"--photos {folder}: no photos there ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                             "give the folder that holds your 10-20 photos")
    sources = [{"path": str(p.resolve()), "mirror": True} for p in photos]
    notes = [f"your photos: {len(photos)} from {folder}, each mirrored; step 1.1's criteria are printed and the "
             "demo goes on even where they fail (sources.require_check: false). For a real run, tag each photo's "
             "view and expression (flenwheel source add --angle/--expression) and keep require_check on"]
    return DemoCharacter(f"your photos ({folder.name})", f"your own photos from {folder}", sources, notes)
