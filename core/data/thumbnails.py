"""Review thumbnails: made once per image, kept in the project's cache, bounded in size.

A thumbnail is keyed by the image's content id, so it stays valid when placement moves the file
between ``good/`` and ``rejected/`` and is never stale (the same id always means the same pixels).
Only a few sizes exist, so a request cannot make the server render arbitrary sizes.

The page's default size is written when an image enters a dataset (``store``, called by the
dataset's ``add_image`` while the picture is still in memory, about 2 ms), so the review page of a
fresh dataset opens without rendering anything; images that arrive otherwise are rendered on
first request or by the background warmer.

The cache lives in the project (``<project>/cache``), and every thumbnail read or written must
resolve inside the project: a cache file or folder that is a symbolic link out of it is refused,
so a planted link can neither make the server send ``/etc/passwd`` nor write outside the project.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from ..data.images import load_image
from .atomic import atomic_write_bytes
from .errors import FlenwheelError

LOG = logging.getLogger("flenwheel.review")

SIZES = (128, 256, 512)
DEFAULT_SIZE = 256
JPEG_QUALITY = 82
#: The page's own first-screen requests go first; the warmer starts after them.
WARM_DELAY_S = 1.0


def thumb_size(requested: str | int | None) -> int:
    """The allowed size closest to what was asked (the default when nothing or nonsense was)."""
    try:
        wanted = int(requested) if requested is not None else DEFAULT_SIZE
    except (TypeError, ValueError):
        return DEFAULT_SIZE
    return min(SIZES, key=lambda size: abs(size - wanted))


class CacheOutsideProjectError(FlenwheelError):
    """A cache file or folder is a symbolic link that leads out of the project."""


def thumb_path(cache_dir: Path, image_id: str, size: int) -> Path:
    return cache_dir / "thumbs" / str(size) / image_id[:2] / f"{image_id}.jpg"


def _inside_project(cache_dir: Path, path: Path) -> Path:
    """``path``, refused when it (symlinks followed) leaves the project that holds ``cache_dir``."""
    project = cache_dir.parent.resolve()
    if not path.resolve().is_relative_to(project):
        shown = path.relative_to(cache_dir.parent) if path.is_relative_to(cache_dir.parent) else path
        raise CacheOutsideProjectError(f"{shown} leads outside the project {project} (a symbolic link?); "
                                       "remove it, the thumbnail cache is rebuilt by itself")
    return path


def thumbnail(cache_dir: Path, image_id: str, source: Path, size: int = DEFAULT_SIZE) -> Path:
    """The cached JPEG thumbnail of ``source`` (made now if missing), at most ``size`` px a side."""
    target = _inside_project(cache_dir, thumb_path(cache_dir, image_id, size))
    if target.is_file():
        return target
    return store(cache_dir, image_id, load_image(source), size)


def store(cache_dir: Path, image_id: str, image: Image.Image, size: int = DEFAULT_SIZE) -> Path:
    """Write the thumbnail of a picture already in memory (an upright RGB image, as saved)."""
    target = _inside_project(cache_dir, thumb_path(cache_dir, image_id, size))
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    atomic_write_bytes(target, buffer.getvalue())
    return target


class ThumbnailWarmer:
    """Makes missing thumbnails in the background, in the order the page will show them.

    When the page lists a dataset, its thumbnails are queued here, so the next screenfuls are
    usually ready before the reviewer scrolls to them; requests for a missing one still render it
    at once. One daemon thread, started a moment after the listing, leaves the first screenful's
    requests the machine to themselves.
    """

    def __init__(self, size: int = DEFAULT_SIZE, delay_s: float = WARM_DELAY_S) -> None:
        self.size = size
        self.delay_s = delay_s
        self._queue: queue.Queue[tuple[Path, str, Callable[[], Path]]] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def warm(self, cache_dir: Path, items: Iterable[tuple[str, Callable[[], Path]]]) -> int:
        """Queue ``(image_id, locate)`` pairs (skipped later if made meanwhile); returns how many.

        ``locate`` finds the image file when its turn comes (placement may have moved it meanwhile).
        """
        count = 0
        with self._lock:
            for image_id, source in items:
                if image_id in self._queued:
                    continue
                self._queued.add(image_id)
                self._queue.put((cache_dir, image_id, source))
                count += 1
            if count and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flenwheel-thumbnails", daemon=True)
                self._thread.start()
        return count

    def _run(self) -> None:
        time.sleep(self.delay_s)
        while True:
            with self._lock:
                if self._queue.empty():
                    self._thread = None
                    return
                cache_dir, image_id, locate = self._queue.get_nowait()
            try:
                if not thumb_path(cache_dir, image_id, self.size).is_file():
                    thumbnail(cache_dir, image_id, locate(), self.size)
            except Exception as exc:  # a moved or bad file must not stop the rest; requests retry it
                LOG.info("FLENwheel review: no thumbnail for %s yet: %s", image_id[:12], exc)
            finally:
                with self._lock:
                    self._queued.discard(image_id)
