"""The review HTTP API through real requests (aiohttp test client): listing, files, decisions, safety."""

from __future__ import annotations

import asyncio
import io
import os

import pytest
import pytest_asyncio
from PIL import Image

from flenwheel.core.data.thumbnails import thumb_path
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app
from flenwheel.core.review.store import ReviewStore

pytestmark = pytest.mark.asyncio
API = "/flenwheel/review"


@pytest_asyncio.fixture
async def served(enriched, aiohttp_client):
    """(client, project, records, base URL of the project's API) for 6 enriched images."""
    project, records = enriched(6)
    client = await aiohttp_client(create_app(project, place_delay=0.05))
    return client, project, records, f"{API}/{project_key(project)}"


async def _json(response, status=200):
    assert response.status == status, await response.text()
    return await response.json()


async def test_projects_stages_and_datasets(served):
    client, project, _, base = served
    projects = (await _json(await client.get(f"{API}/projects")))["projects"]
    assert projects == [{"key": project_key(project), "name": "Test Character", "folder": str(project.root),
                         "token": "ohwx_char person"}]
    stages = {s["name"]: s for s in (await _json(await client.get(f"{API}/stages")))["stages"]}
    assert [label["name"] for label in stages["enriched"]["labels"]] == ["good", "needs_correction", "reject"]
    assert stages["synthetic"]["notes"] == ["fills gap"]
    datasets = (await _json(await client.get(f"{base}/datasets")))["datasets"]
    listed = [(d["stage"], d["version"], d["total"], d["pending"]) for d in datasets]
    assert listed == [("enriched", "v1", 6, 6)]


async def test_items_carry_source_prompt_identity_and_filters(served):
    client, project, records, base = served
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "reject", reason="artifacts")
    data = await _json(await client.get(f"{base}/items", params={"stage": "enriched", "version": "v1"}))
    items = {item["id"]: item for item in data["items"]}
    first = items[records[0].id]
    source_id = records[0].parents[0]
    assert first["source"] == {"dataset": "source", "version": "v1", "id": source_id}
    assert first["identity"]["similarity"] == 0.59 and "identity" not in items[records[1].id]
    assert first["prompt"].startswith("change the background to scene 0")
    assert (first["label"], first["reason_text"]) == ("reject", "artifacts")
    assert data["summary"]["pending"] == 5 and data["summary"]["counts"]["reject"] == 1

    for wanted, count in (("pending", 5), ("decided", 1), ("reject", 1), ("good", 0)):
        listed = await _json(await client.get(f"{base}/items", params={"stage": "enriched", "version": "v1",
                                                                       "filter": wanted}))
        assert len(listed["items"]) == count, wanted
    bad = await client.get(f"{base}/items", params={"stage": "enriched", "version": "v1", "filter": "nope"})
    assert bad.status == 400


async def test_decide_undo_and_placement_through_the_api(served):
    client, project, records, base = served
    image = records[2].id
    data = await _json(await client.post(f"{base}/decide", json={
        "stage": "enriched", "version": "v1", "id": image, "label": "needs_correction",
        "reason": "insufficient change", "reviewer": "ana"}))
    assert data["decision"]["reason"] == "insufficient_change" and data["summary"]["pending"] == 5
    assert ReviewStore(project).current("enriched", "v1")[image].label == "needs_correction"

    dataset = project.dataset("enriched", "v1")
    for _ in range(100):
        if dataset.record(image).filename != "edit_002.png":
            break
        await asyncio.sleep(0.05)
    assert dataset.record(image).filename == "corrections/edit_002.png"
    assert (dataset.path / "corrections" / "edit_002.png").is_file()

    undone = await _json(await client.post(f"{base}/undo", json={"stage": "enriched", "version": "v1"}))
    assert undone["undone"]["image_id"] == image and undone["current"] is None
    placed = await _json(await client.post(f"{base}/place", json={"stage": "enriched", "version": "v1"}))
    assert placed["report"]["moved"] == ["corrections/edit_002.png -> edit_002.png"]
    history = await _json(await client.get(f"{base}/history", params={"stage": "enriched", "version": "v1",
                                                                       "id": image}))
    assert [row["kind"] for row in history["history"]] == ["decide", "undo"]
    nothing = await _json(await client.post(f"{base}/undo", json={"stage": "enriched", "version": "v1"}))
    assert nothing["undone"] is None


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"stage": "enriched", "version": "v1", "label": "good"}, 400, "'id' must be"),
    ({"stage": "enriched", "version": "v1", "id": "0" * 64, "label": "good"}, 404, "not in enriched/v1"),
    ({"stage": "enriched", "version": "v1", "id": "FIRST", "label": "great"}, 400, "not a label"),
    ({"stage": "enriched", "version": "v1", "id": "FIRST", "label": "reject"}, 400, "needs a reason"),
    ({"stage": "enriched", "version": "../x", "id": "FIRST", "label": "good"}, 404, "not a dataset version"),
    ({"stage": "source", "version": "v1", "id": "FIRST", "label": "good"}, 400, "unknown review stage"),
])
async def test_bad_decisions_get_clear_errors(served, body, status, message):
    client, project, records, base = served
    body = {key: records[0].id if value == "FIRST" else value for key, value in body.items()}
    data = await _json(await client.post(f"{base}/decide", json=body), status)
    assert message in data["error"]
    assert ReviewStore(project).history() == []


async def test_full_image_and_a_thumbnail_made_once_at_a_bounded_size(served):
    client, project, records, base = served
    image = await client.get(f"{base}/image/enriched/v1/{records[0].id}")
    assert image.status == 200
    assert await image.read() == (project.dataset("enriched", "v1").path / "edit_000.png").read_bytes()

    source = await client.get(f"{base}/thumb/source/v1/{records[0].parents[0]}")
    assert source.status == 200 and source.content_type == "image/jpeg"
    huge = await client.get(f"{base}/thumb/enriched/v1/{records[0].id}", params={"size": "100000"})
    picture = Image.open(io.BytesIO(await huge.read()))
    assert picture.format == "JPEG" and max(picture.size) <= 512
    cached = thumb_path(project.cache_dir, records[0].id, 512)
    before = cached.stat().st_mtime_ns
    again = await client.get(f"{base}/thumb/enriched/v1/{records[0].id}", params={"size": "512"})
    assert again.status == 200 and cached.stat().st_mtime_ns == before
    assert await again.read() == cached.read_bytes()


@pytest.mark.parametrize("path", [
    "/image/../v1/{id}",
    "/image/enriched/..%2F..%2F..%2Fsource/{id}",
    "/image/%2Fetc/v1/{id}",
    "/image/enriched/v1%2F..%2F..%2F/{id}",
    "/image/enriched/v1/..%2F..%2F..%2Fflenwheel.json",
    "/image/enriched/v1/%2Fetc%2Fpasswd",
    "/thumb/enriched/v1/{id}%2F..%2F..%2Fsecret",
    "/image/enriched/v1/" + "0" * 64,
    "/image/enriched/v1/{source}",
    "/image/source/v1/{id}",
    "/image/enriched/v9/{id}",
])
async def test_traversal_absolute_paths_and_foreign_ids_are_refused(served, path):
    client, _, records, base = served
    url = base + path.format(id=records[0].id, source=records[0].parents[0])
    response = await client.get(url)
    assert response.status in (400, 403, 404), (url, response.status)
    assert b"\x89PNG" not in await response.read()


async def test_unknown_projects_are_refused(served):
    client, _, _, _ = served
    for key in ("0123456789abcdef", "..", "%2Ftmp%2Fproject"):
        response = await client.get(f"{API}/{key}/datasets")
        assert response.status == 404


async def test_symlinks_out_of_the_project_are_refused(served, tmp_path):
    client, project, records, base = served
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret outside the project")
    dataset = project.dataset("enriched", "v1")
    target = dataset.path / "edit_001.png"
    target.unlink()
    os.symlink(secret, target)
    response = await client.get(f"{base}/image/enriched/v1/{records[1].id}")
    assert response.status == 404 and b"secret" not in await response.read()
    thumb = await client.get(f"{base}/thumb/enriched/v1/{records[1].id}")
    assert thumb.status == 404


async def test_a_version_folder_linked_from_outside_is_refused(served, tmp_path):
    client, project, records, base = served
    outside = tmp_path / "outside_v2"
    (project.stage_dir("enriched") / "v1").rename(outside)
    os.symlink(outside, project.stage_dir("enriched") / "v1")
    response = await client.get(f"{base}/image/enriched/v1/{records[0].id}")
    assert response.status == 404 and "outside the project" in (await response.json())["error"]


async def test_cross_site_and_non_json_posts_are_refused(served):
    client, project, records, base = served
    body = {"stage": "enriched", "version": "v1", "id": records[0].id, "label": "good"}
    evil = await client.post(f"{base}/decide", json=body, headers={"Origin": "http://evil.example"})
    assert evil.status == 403
    fetch = await client.post(f"{base}/decide", json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status == 403
    form = await client.post(f"{base}/decide", data="stage=enriched", headers={"Content-Type": "text/plain"})
    assert form.status == 415
    assert ReviewStore(project).history() == []
    host = f"{client.server.host}:{client.server.port}"
    same = await client.post(f"{base}/decide", json=body, headers={"Origin": f"http://{host}"})
    assert same.status == 200


async def test_the_standalone_server_refuses_foreign_host_names(served):
    client, _, _, _ = served
    rebinding = await client.get(f"{API}/projects", headers={"Host": "attacker.example:8189"})
    assert rebinding.status == 403
    local = await client.get(f"{API}/projects", headers={"Host": "localhost:8189"})
    assert local.status == 200


async def test_the_page_is_served(served):
    client, _, _, _ = served
    root = await client.get("/", allow_redirects=False)
    assert root.status == 302 and root.headers["Location"] == "/review/index.html"
    page = await client.get("/review/index.html")
    assert page.status == 200 and "mountReview" in await page.text()
    module = await client.get("/review/app.js")
    assert module.status == 200 and "export function mountReview" in await module.text()


async def test_the_server_makes_thumbnails_in_the_background_from_the_start(served):
    _, project, records, _ = served
    wanted = {record.id for record in records}
    for _ in range(100):
        made = {path.stem for path in (project.cache_dir / "thumbs").rglob("*.jpg")}
        if wanted <= made:
            break
        await asyncio.sleep(0.1)
    assert wanted <= made


async def test_items_say_who_decided_and_auto_review_shows_as_such(served):
    from flenwheel.core.review.stages import AUTO_REVIEWER

    client, project, records, base = served
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good", reviewer=AUTO_REVIEWER)
    store.decide(records[1].id, "enriched", "v1", "reject", reason="artifacts", reviewer="ana")
    data = await _json(await client.get(f"{base}/items", params={"stage": "enriched", "version": "v1"}))
    items = {item["id"]: item for item in data["items"]}
    assert (items[records[0].id]["reviewer"], items[records[0].id]["auto"]) == (AUTO_REVIEWER, True)
    assert (items[records[1].id]["reviewer"], items[records[1].id]["auto"]) == ("ana", False)
    assert items[records[1].id]["at"] and "auto" not in items[records[2].id]


async def test_benchmark_items_carry_their_cell(picture, project, aiohttp_client):
    dataset = project.create_dataset("benchmark")
    with dataset.edit() as edit:
        portrait = edit.add_image(picture(1), stem="card_0", prompt="p", seed=1, angle="front",
                                  expression="smiling", cell="front-smiling", **{"try": 2})
        pose = edit.add_image(picture(2), stem="card_1", prompt="p", seed=2, cell="t-pose", pose="t-pose",
                              **{"try": 0})
    client = await aiohttp_client(create_app(project, place_delay=0.05))
    base = f"{API}/{project_key(project)}"
    data = await _json(await client.get(f"{base}/items", params={"stage": "benchmark", "version": "v1"}))
    items = {item["id"]: item for item in data["items"]}
    assert (items[portrait.id]["cell"], items[portrait.id]["try"]) == ("front-smiling", 2)
    assert (items[pose.id]["cell"], items[pose.id]["pose"]) == ("t-pose", "t-pose")
