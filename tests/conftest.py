"""Shared fixtures: offline guard, tiny model cache, projects and the shared face photos.

Nothing in the suite may touch the network. HF_HUB_OFFLINE is set before any Hugging Face import,
and every socket connection to a non-loopback address fails loudly (loopback stays open for the
aiohttp servers the review and ComfyUI-runner tests start).
"""

from __future__ import annotations

import os

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ipaddress  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: Real face photos live beside the checkout, never in it (DESIGN.md section 7): ``../shared/faces``
#: (people with known identities) and ``../shared/faces-views`` (labelled head views and expressions).
#: ``FLENWHEEL_SHARED`` points elsewhere when the checkout does not sit beside ``shared/``.
SHARED = Path(os.environ.get("FLENWHEEL_SHARED") or ROOT.parent / "shared")
FACES = SHARED / "faces"
FACES_VIEWS = SHARED / "faces-views"


def shared_folder(folder: Path) -> Path:
    """``folder`` when it holds photos, else skip the calling test with one reason naming it."""
    if not folder.is_dir():
        pytest.skip(f"needs real face photos in {folder} (the shared folder beside the checkout; "
                    "set FLENWHEEL_SHARED to use another place)")
    return folder


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to reach anything but loopback."""


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # unix sockets
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def _block_network():
    original = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise NetworkBlocked(f"test tried to reach {address}; the suite must run offline")
        return original(self, address)

    socket.socket.connect = guarded
    yield
    socket.socket.connect = original


@pytest.fixture(scope="session")
def tiny_cache(request) -> Path:
    """Folder holding the tiny models, kept between sessions in pytest's cache (rebuilt on format change)."""
    return Path(request.config.cache.mkdir("flenwheel-tiny-models"))


@pytest.fixture(scope="session")
def tiny_flux(tiny_cache) -> Path:
    from flenwheel.core.testing import tiny

    return tiny.ensure("flux", tiny_cache)


@pytest.fixture(scope="session")
def tiny_qwen_edit(tiny_cache) -> Path:
    from flenwheel.core.testing import tiny

    return tiny.ensure("qwen-edit", tiny_cache)


@pytest.fixture(scope="session")
def tiny_flux2_klein(tiny_cache) -> Path:
    from flenwheel.core.testing import tiny

    return tiny.ensure("flux2-klein", tiny_cache)


@pytest.fixture(scope="session")
def tiny_z_image(tiny_cache) -> Path:
    from flenwheel.core.testing import tiny

    return tiny.ensure("z-image", tiny_cache)


@pytest.fixture(scope="session")
def tiny_qwen_edit_2511(tiny_cache) -> Path:
    from flenwheel.core.testing import tiny

    return tiny.ensure("qwen-edit-2511", tiny_cache)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on one torch thread for a module: on a small shared CPU more threads only fight
    each other. Test modules use it (autouse there) instead of each setting threads by hand."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def project(tmp_path):
    from flenwheel.core.data.project import Project

    return Project.init(tmp_path / "project", name="Test Character")


@pytest.fixture(scope="session")
def faces() -> Path:
    """Real photos of known people in ``../shared/faces`` (its README says who is who); skips without it."""
    return shared_folder(FACES)


@pytest.fixture(scope="session")
def faces_views() -> Path:
    """Labelled head views and expressions in ``../shared/faces-views`` (``labels.csv``); skips without it."""
    return shared_folder(FACES_VIEWS)


@pytest.fixture
def solid_image():
    """A plain-colour picture (never a stand-in for a face)."""
    from PIL import Image

    def make(size=(640, 640), color=(120, 130, 140)):
        return Image.new("RGB", size, color)

    return make


@pytest.fixture
def noise_image():
    """Uniform noise with a fixed seed: sharp, well exposed, and face-less."""
    import numpy as np
    from PIL import Image

    def make(size=(640, 640), seed=0):
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")

    return make
