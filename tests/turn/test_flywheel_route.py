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
