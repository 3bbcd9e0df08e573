"""Corrected-target uploads under hostile input: GIFs, tiny fixes, bombs, huge bodies, symlinked caches."""

from __future__ import annotations

import gc
import io
import tracemalloc

import pytest
import pytest_asyncio
from PIL import Image

from flenwheel.core.data.images import IMAGE_SUFFIXES, png_bytes
from flenwheel.core.editor.fix_routes import review_extensions
from flenwheel.core.review.api import MAX_UPLOAD, UPLOAD_TYPES
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app

pytestmark = pytest.mark.asyncio
API = "/flenwheel/review"


@pytest_asyncio.fixture
async def served(corrections, aiohttp_client):
    case = corrections(3, corrected=2)
    client = await aiohttp_client(create_app(case.project, place_delay=0.05, extensions=review_extensions()))
    return client, case, f"{API}/{project_key(case.project)}"


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


async def _upload(client, base, case, body: bytes, content_type: str = "image/png"):
    return await client.post(f"{base}/fix", data=body, headers={"Content-Type": content_type},
                             params={"version": "v1", "id": case.records[0].id})


async def test_gif_follows_the_same_rule_as_triplets_fix(served, picture):
    client, case, base = served
    assert ".gif" in IMAGE_SUFFIXES and "image/gif" in UPLOAD_TYPES
    response = await _upload(client, base, case, _encoded(picture(21, (64, 64)), "GIF"), "image/gif")
    assert response.status == 200, await response.text()
    assert (case.enriched.path / "corrections" / "fixed" / "edit_00.png").is_file()
    assert case.enriched.verify().ok


async def test_a_fix_smaller_than_the_edit_is_refused(served, picture):
    client, case, base = served
    for size in ((1, 1), (32, 32)):
        response = await _upload(client, base, case, png_bytes(picture(22, size)))
        text = await response.text()
        assert response.status == 400 and f"is {size[0]}x{size[1]}, smaller than the failed edit" in text
        assert "(64x64)" in text
    assert not (case.enriched.path / "corrections" / "fixed").exists()
    assert case.enriched.verify().ok


async def test_a_decompression_bomb_upload_is_refused_before_decoding(served, monkeypatch, picture):
    client, case, base = served
    monkeypatch.setenv("FLENWHEEL_MAX_PIXELS", "5000")
    response = await _upload(client, base, case, png_bytes(picture(23, (100, 100))))
    text = await response.text()
    assert response.status == 400
    assert "100x100 is 0.0 megapixels, above the limit of 0.005 megapixels" in text and "FLENWHEEL_MAX_PIXELS" in text
    assert not (case.enriched.path / "corrections" / "fixed").exists()


async def test_refused_large_uploads_release_their_memory(served):
    client, case, base = served
    body = b"\0" * (MAX_UPLOAD + (1 << 20))
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(3):
            response = await _upload(client, base, case, body)
            assert response.status == 413
            response.release()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.enable()
    assert kept < 32 * (1 << 20), f"{kept / (1 << 20):.0f} MiB still held after 3 refused uploads"


async def test_an_upload_writes_nothing_through_a_symlinked_cache(served, picture, tmp_path):
    client, case, base = served
    outside = tmp_path / "outside" / "uploads"
    cache = case.project.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "uploads").symlink_to(outside, target_is_directory=True)
    response = await _upload(client, base, case, png_bytes(picture(24, (64, 64))))
    assert response.status == 200, await response.text()
    assert not outside.exists()
    assert case.enriched.verify().ok
