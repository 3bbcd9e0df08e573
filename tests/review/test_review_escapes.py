"""The review routes' share of issue 26: no stage, version or project a request names leads outside.

Every hostile value is sent where a browser (or anyone who can reach ComfyUI) could put it - the
query, the URL path (percent-encoded), the JSON body - and must be answered with an error while
the project and the folder beside it stay byte for byte as they were.
"""

from __future__ import annotations

import sys
import types
from urllib.parse import quote

import pytest
import pytest_asyncio

from flenwheel.core.data.project import Project
from flenwheel.core.review.projects import ProjectRegistry, project_key
from flenwheel.core.review.server import create_app
from flenwheel.core.review.store import ReviewStore

pytestmark = pytest.mark.asyncio
API = "/flenwheel/review"


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest_asyncio.fixture
async def hostile_setup(enriched, aiohttp_client, tmp_path):
    """A served project with 3 enriched images and another project B (with data) beside it."""
    project, records = enriched(3)
    other = Project.init(tmp_path / "B", name="B")
    other.create_dataset("enriched")
    client = await aiohttp_client(create_app(project, place_delay=0.05))
    return client, project, other, records, f"{API}/{project_key(project)}"


def hostile_versions(project, other):
    return ["../../../B/data/enriched/v1", str(other.root / "data" / "enriched" / "v1"), "v1/../v1", "v1/", ".."]


async def test_hostile_versions_in_queries_paths_and_bodies_are_refused(hostile_setup):
    client, project, other, records, base = hostile_setup
    before = snapshot(project.root.parent)
    for version in hostile_versions(project, other):
        answers = [
            await client.get(f"{base}/items", params={"stage": "enriched", "version": version}),
            await client.get(f"{base}/summary", params={"stage": "enriched", "version": version}),
            await client.get(f"{base}/image/enriched/{quote(version, safe='')}/{records[0].id}"),
            await client.get(f"{base}/thumb/enriched/{quote(version, safe='')}/{records[0].id}"),
            await client.get(f"{base}/fix/{quote(version, safe='')}/{records[0].id}"),
            await client.post(f"{base}/decide", json={"stage": "enriched", "version": version, "id": records[0].id,
                                                      "label": "good"}),
            await client.post(f"{base}/place", json={"stage": "enriched", "version": version}),
        ]
        for answer in answers:
            assert 400 <= answer.status < 500, (version, answer.url, answer.status)
    assert ReviewStore(project).history() == []
    assert snapshot(project.root.parent) == before


async def test_hostile_stages_are_refused(hostile_setup):
    client, project, other, records, base = hostile_setup
    before = snapshot(project.root.parent)
    for stage in ["../../B/data/enriched", "..", "/etc"]:
        answers = [await client.get(f"{base}/items", params={"stage": stage, "version": "v1"}),
                   await client.get(f"{base}/image/{quote(stage, safe='')}/v1/{records[0].id}")]
        assert all(400 <= answer.status < 500 for answer in answers)
    assert snapshot(project.root.parent) == before


async def test_inside_comfyui_a_project_outside_the_allowed_places_is_not_served(monkeypatch, tmp_path):
    from flenwheel.nodes import _places, _review_routes

    output = tmp_path / "comfy" / "output"
    mine = Project.init(output / "flenwheel" / "hero", name="Hero")
    outside = Project.init(tmp_path / "elsewhere" / "villain", name="Villain")
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(get_output_directory=lambda: str(output)))
    monkeypatch.setattr(_places, "STARTUP_ROOTS", ())
    registry = ProjectRegistry(search_roots=_review_routes._output_folders)
    assert [entry["name"] for entry in registry.entries()] == ["Hero"]
    assert registry.get(project_key(mine)).root == mine.root
    with pytest.raises(Exception, match="unknown project"):
        registry.get(project_key(outside))
