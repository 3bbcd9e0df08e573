"""The sidebar's read-only flywheel route: per-turn figures from reports/flywheel.json, by project key."""

from __future__ import annotations

import pytest
import pytest_asyncio

from flenwheel.core.data.project import Project
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app
from flenwheel.core.turn.flywheel_routes import review_extensions
from flenwheel.core.turn.state import FlywheelState

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def served(tmp_path, aiohttp_client):
    project = Project.init(tmp_path / "p", name="Ada")
    client = await aiohttp_client(create_app(project, place_delay=0.05, extensions=review_extensions()))
    return client, project, f"/flenwheel/review/{project_key(project)}/flywheel"


async def test_a_project_without_turns_answers_an_empty_list(served):
    client, _, url = served
    response = await client.get(url)
    assert response.status == 200 and (await response.json())["turns"] == []


async def test_the_route_serves_each_turns_figures(served):
    client, project, url = served
    state = FlywheelState.load(project, auto_review=True)
    entry = state.current([])
    entry.update(char_lora="char_v1", correction_rate=0.25, finished="now", gain=None,
                 first_try={"verified": 2, "unverified": 5, "cells": 23, "rate": 0.087})
    entry["images"]["pristine"] = 4
    entry["editor"].update(chosen=["ours:v1"], why="new editor: correction rate 10% (new) vs 25% (current)")
    state.save()
    data = await (await client.get(url)).json()
    assert data["auto_review"] is True
    turn = data["turns"][0]
    assert (turn["verified"], turn["unverified"], turn["editor"], turn["images"]["pristine"]) == (2, 5, "ours:v1", 4)
    assert (await client.get("/flenwheel/review/not-a-project/flywheel")).status == 404


async def test_the_report_is_served_once_written_and_nothing_else_from_the_project(served):
    client, project, url = served
    assert (await client.get(url + "/flywheel.html")).status == 404
    assert (await (await client.get(url)).json())["report"] is False
    reports = project.root / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "flywheel.html").write_text("<h1>turns</h1>", encoding="utf-8")
    (reports / "flywheel.png").write_bytes(b"\x89PNG fake")
    (project.root / "secret.txt").write_text("no", encoding="utf-8")
    page = await client.get(url + "/flywheel.html")
    assert page.status == 200 and "<h1>turns</h1>" in await page.text()
    assert (await client.get(url + "/flywheel.png")).status == 200
    assert (await (await client.get(url)).json())["report"] is True
    for name in ("flywheel.json", "..%2Fsecret.txt", "secret.txt"):
        assert (await client.get(f"{url}/{name}")).status == 404, name


async def test_training_runs_on_disk_are_listed_with_their_progress(served):
    import json
    import time

    client, project, url = served
    runs_url = url.removesuffix("/flywheel") + "/training"
    assert (await (await client.get(runs_url)).json())["runs"] == []
    now = time.time()
    finished = project.root / "models" / "flux_lora" / "char_v1"
    loading = project.root / "models" / "flux_lora" / "char_v2"
    for folder, events in (
        (finished, [{"event": "start", "trainer": "flux", "step": 0, "total": 4, "time": now - 100},
                    *({"event": "step", "step": s, "total": 4, "loss": 1.0 / s, "time": now - 90 + s}
                      for s in (1, 2, 3, 4)),
                    {"event": "checkpoint", "step": 4, "time": now - 80},
                    {"event": "done", "status": "finished", "step": 4, "time": now - 80,
                     "lora_path": str(finished / "x.safetensors")}]),
        (loading, [{"event": "phase", "phase": "loading models", "time": now - 5},
                   {"event": "phase", "phase": "caching latents", "done": 12, "total": 40, "time": now - 1}]),
    ):
        folder.mkdir(parents=True)
        (folder / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    runs = (await (await client.get(runs_url)).json())["runs"]
    assert [run["output"] for run in runs] == [str(loading), str(finished)]  # newest first
    assert runs[1]["status"] == "finished" and runs[1]["step"] == 4 and runs[1]["kind"] == "flux"
    assert runs[1]["losses"] == [[1, 1.0], [2, 0.5], [3, 1 / 3], [4, 0.25]] and runs[1]["checkpoints"] == [4]
    assert runs[0]["status"] == "running" and runs[0]["phase"] == "caching latents 12/40"
    assert (await client.get("/flenwheel/review/not-a-project/training")).status == 404
