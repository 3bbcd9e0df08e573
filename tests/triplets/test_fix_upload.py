"""Picking a corrected target in the review page: the upload route, through real requests."""

from __future__ import annotations

import io

import pytest
import pytest_asyncio
from PIL import Image

from flenwheel.core.data.images import load_image, pixel_hash, png_bytes
from flenwheel.core.editor.fix_routes import review_extensions
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app

pytestmark = pytest.mark.asyncio
API = "/flenwheel/review"


@pytest_asyncio.fixture
async def served(corrections, aiohttp_client):
    case = corrections(3, corrected=2)
    client = await aiohttp_client(create_app(case.project, place_delay=0.05, extensions=review_extensions()))
    return client, case, f"{API}/{project_key(case.project)}"


def _jpeg(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


async def test_upload_stores_the_fix_under_the_edits_name(served, picture):
    client, case, base = served
    record = case.records[0]
    body = _jpeg(picture(11, (128, 128)))
    response = await client.post(f"{base}/fix", data=body, headers={"Content-Type": "image/jpeg"},
                                 params={"version": "v1", "id": record.id, "name": "../../etc/passwd.jpg"})
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["fix"] == {"file": "corrections/fixed/edit_00.png", "w": 128, "h": 128}
    assert "scaled from 128x128 to 64x64" in data["note"] and "../../etc/passwd.jpg" in data["note"]
    stored = case.enriched.path / "corrections" / "fixed" / "edit_00.png"
    assert load_image(stored).size == (128, 128)
    assert case.enriched.verify().ok

    items = await (await client.get(f"{base}/items", params={"stage": "enriched", "version": "v1"})).json()
    fixes = {item["id"]: item.get("fix") for item in items["items"]}
    assert fixes[record.id]["file"] == "edit_00.png" and fixes[case.records[1].id] is None
    served_file = await client.get(f"{base}/fix/v1/{record.id}")
    assert served_file.status == 200
    assert pixel_hash(Image.open(io.BytesIO(await served_file.read()))) == pixel_hash(load_image(stored))
    assert (await client.get(f"{base}/fix/v1/{case.records[1].id}")).status == 404


@pytest.mark.parametrize(("target", "body", "headers", "status", "message"), [
    (2, "png", {}, 400, "only edits reviewed as needs_correction take a corrected target"),
    (0, "wide", {}, 400, "(aspect 1.500) but the failed edit"),
    (0, "garbage", {}, 400, "the picked image cannot be read: the file is truncated or corrupt"),
    (0, "png", {"Content-Type": "text/html"}, 415, "send the image as one of"),
    (0, "png", {"Origin": "http://evil.example"}, 403, "cross-site requests are refused"),
    (0, "png", {"Sec-Fetch-Site": "cross-site"}, 403, "cross-site requests are refused"),
    (0, "empty", {}, 400, "the upload is empty"),
])
async def test_upload_refusals(served, picture, target, body, headers, status, message):
    client, case, base = served
    payload = {"png": png_bytes(picture(12)), "wide": png_bytes(picture(13, (96, 64))),
               "garbage": b"\x89PNG\r\n\x1a\nnot really", "empty": b""}[body]
    response = await client.post(f"{base}/fix", data=payload,
                                 headers={"Content-Type": "image/png", **headers},
                                 params={"version": "v1", "id": case.records[target].id})
    assert response.status == status and message in await response.text()
    assert not (case.enriched.path / "corrections" / "fixed").exists()


async def test_upload_never_takes_a_path_from_the_request(served, picture):
    client, case, base = served
    for params in ({"version": "../v1", "id": case.records[0].id}, {"version": "v1", "id": "../../x"},
                   {"version": "v9", "id": case.records[0].id}):
        response = await client.post(f"{base}/fix", data=png_bytes(picture(14)),
                                     headers={"Content-Type": "image/png"}, params=params)
        assert response.status == 404, params
    assert (await client.get(f"{base}/fix/v1/..%2F..%2Fflenwheel.json")).status in (400, 404)
    stranger = await client.post(f"{API}/0000000000000000/fix", data=b"x", headers={"Content-Type": "image/png"},
                                 params={"version": "v1", "id": case.records[0].id})
    assert stranger.status == 404


async def test_upload_size_limit(served, monkeypatch):
    import flenwheel.core.editor.fix_routes as review_api

    client, case, base = served
    monkeypatch.setattr(review_api, "MAX_UPLOAD", 1000)
    response = await client.post(f"{base}/fix", data=b"\0" * 5000, headers={"Content-Type": "image/png"},
                                 params={"version": "v1", "id": case.records[0].id})
    assert response.status == 413


async def test_rerun_items_show_their_source_and_the_failed_edit(served, picture):
    client, case, base = served
    failed = case.records[0]
    reruns = case.project.create_dataset("reruns", "v1", info={"enriched_dataset": "enriched/v1"})
    candidate = reruns.add_image(picture(21), stem="edit_00_rerun_5", parents=[failed.parents[0], failed.id],
                                 corrects=failed.id, enriched_dataset="enriched/v1", prompt="better", seed=5)
    data = await (await client.get(f"{base}/items", params={"stage": "rerun", "version": "v1"})).json()
    item = data["items"][0]
    assert item["source"] == {"dataset": "source", "version": "v1", "id": failed.parents[0]}
    assert item["corrects"] == {"dataset": "enriched", "version": "v1", "id": failed.id}
    shown = await client.get(f"{base}/image/enriched/v1/{failed.id}")
    assert shown.status == 200
    decided = await client.post(f"{base}/decide", json={"stage": "rerun", "version": "v1", "id": candidate.id,
                                                        "label": "accept"})
    assert decided.status == 200 and (await decided.json())["summary"]["counts"]["accept"] == 1
