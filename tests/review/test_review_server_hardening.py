"""The review servers (standalone and mounted in ComfyUI): DNS rebinding, odd requests, start after a kill."""

from __future__ import annotations

import sys
import types

import pytest
from aiohttp import web
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app
from flenwheel.core.review.store import ReviewStore

pytestmark = pytest.mark.asyncio
API = "/flenwheel/review"


def _verify_clean(project) -> None:
    result = CliRunner().invoke(cli, ["verify", str(project.root)])
    assert result.exit_code == 0, result.output


@pytest.fixture
def comfy(monkeypatch):
    """A stand-in PromptServer (and --listen) on which the pack mounts its routes -> its RouteTableDef."""
    fake = types.SimpleNamespace(routes=web.RouteTableDef(), send_sync=lambda *a, **k: None)
    monkeypatch.setitem(sys.modules, "server", types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=fake)))
    cli_args = types.ModuleType("comfy.cli_args")
    cli_args.args = types.SimpleNamespace(listen="127.0.0.1")
    monkeypatch.setitem(sys.modules, "comfy", types.ModuleType("comfy"))
    monkeypatch.setitem(sys.modules, "comfy.cli_args", cli_args)
    from flenwheel.nodes import _review_routes

    monkeypatch.setattr(_review_routes, "_state", {})
    return fake, _review_routes


def _comfy_app(fake) -> web.Application:
    app = web.Application()
    app.add_routes(fake.routes)
    return app


async def test_mounted_routes_refuse_a_rebinding_host(enriched, comfy, aiohttp_client):
    project, records = enriched(2)
    fake, routes = comfy
    key = routes.remember_project(project)
    assert routes.mount_review_routes()
    client = await aiohttp_client(_comfy_app(fake))
    decision = {"stage": "enriched", "version": "v1", "id": records[0].id, "label": "good"}
    evil = {"Host": "evil.example:8188", "Origin": "http://evil.example:8188"}
    response = await client.post(f"{API}/{key}/decide", json=decision, headers=evil)
    assert response.status == 403 and "answers only" in await response.text()
    assert (await client.get(f"{API}/projects", headers=evil)).status == 403
    assert not ReviewStore(project).current("enriched", "v1")
    ok = await client.post(f"{API}/{key}/decide", json=decision,
                           headers={"Host": "localhost:8188", "Origin": "http://localhost:8188"})
    assert ok.status == 200, await ok.text()


async def test_nested_json_and_long_paths_are_bad_requests(enriched, aiohttp_client):
    project, records = enriched(2)
    client = await aiohttp_client(create_app(project))
    base = f"{API}/{project_key(project)}"
    nested = "[" * 100_000 + "]" * 100_000
    response = await client.post(f"{base}/decide", data=nested, headers={"Content-Type": "application/json"})
    assert response.status == 400 and "nests too deeply" in await response.text()
    for path in ("/review/" + "a" * 5000, f"{base}/thumb/enriched/v1/" + "a" * 5000):
        assert (await client.get(path)).status in (400, 404), path
    assert (await client.get("/review/" + "a" * 5000)).status == 400
    _verify_clean(project)


def _decided_but_not_placed(enriched):
    """What a kill -9 between a decision and its placement leaves: the store knows, the folders not yet."""
    project, records = enriched(3)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good")
    store.decide(records[1].id, "enriched", "v1", "reject", reason="artifacts")
    dataset = project.dataset("enriched", "v1")
    assert not (dataset.path / "good").exists()
    return project, records, dataset


async def test_the_standalone_server_finishes_pending_placement_when_it_starts(enriched, aiohttp_client):
    project, records, dataset = _decided_but_not_placed(enriched)
    client = await aiohttp_client(create_app(project))
    assert (dataset.path / "good" / "edit_000.png").is_file()
    assert (dataset.path / "rejected" / "edit_001.png").is_file()
    image = await client.get(f"{API}/{project_key(project)}/image/enriched/v1/{records[0].id}")
    assert image.status == 200
    _verify_clean(project)


async def test_comfyui_finishes_pending_placement_when_the_routes_mount(enriched, comfy, aiohttp_client):
    project, records, dataset = _decided_but_not_placed(enriched)
    fake, routes = comfy
    routes.registry().add(project)
    assert routes.mount_review_routes()
    routes._state["finishing"].join(30)
    assert (dataset.path / "good" / "edit_000.png").is_file()
    assert (dataset.path / "rejected" / "edit_001.png").is_file()
    _verify_clean(project)
