"""``flenwheel comfy run`` against a fake ComfyUI: the four endpoints, its events and its exit codes.

The fake speaks ComfyUI 0.3.64's protocol (POST /prompt, /ws?clientId=, /history/{id}, /view, plus
/object_info for UI workflows) and plays a scripted run after each accepted prompt.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest
from aiohttp import web
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.comfy_tools.client import free_name, safe_relative
from flenwheel.comfy_tools.node_specs import core_object_info, pack_object_info
from flenwheel.comfy_tools.prompt_overrides import OverrideError, apply_overrides

DATA = Path(__file__).parent / "data" / "workflows"
PNG = b"\x89PNG\r\n\x1a\nfake image bytes"


class FakeComfy:
    """A scripted ComfyUI: ``scenario`` picks what happens to each queued prompt."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.posted: list[dict] = []
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.history: dict[str, dict] = {}
        self.url = ""
        self.app = web.Application()
        self.app.router.add_post("/prompt", self.post_prompt)
        self.app.router.add_get("/ws", self.websocket)
        self.app.router.add_get("/history/{prompt_id}", self.get_history)
        self.app.router.add_get("/view", self.view)
        self.app.router.add_get("/object_info", self.object_info)
        self.app.on_shutdown.append(self.close_sockets)

    async def post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posted.append(body)
        if self.scenario == "rejected":
            return web.json_response(
                {
                    "error": {
                        "type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                        "details": "",
                        "extra_info": {},
                    },
                    "node_errors": {
                        "3": {
                            "class_type": "FlenwheelCurateSources",
                            "dependent_outputs": ["6"],
                            "errors": [
                                {
                                    "type": "value_not_in_list",
                                    "message": "Value not in list",
                                    "details": "angle: 'sideways' not in ['front', 'left']",
                                    "extra_info": {},
                                }
                            ],
                        }
                    },
                },
                status=400,
            )
        prompt_id = f"p{len(self.posted)}"
        asyncio.get_running_loop().create_task(self.play(body["client_id"], prompt_id))
        return web.json_response({"prompt_id": prompt_id, "number": len(self.posted),
                                  "node_errors": self.skipped if self.scenario == "partial" else {}})

    #: What ComfyUI 0.3.64 answers when one output's inputs are invalid and the others still run (it
    #: queues the valid outputs and lists the skipped one), e.g. template 14 without its model files.
    skipped = {"12": {"class_type": "RandomNoise", "dependent_outputs": ["10"], "errors": [
        {"type": "value_not_in_list", "message": "Value not in list", "details": "",
         "extra_info": {"input_name": "noise_seed", "input_config": None, "received_value": "x"}}]}}

    async def play(self, client_id: str, prompt_id: str) -> None:
        ws = self.sockets[client_id]

        async def send(kind: str, **data) -> None:
            await ws.send_str(json.dumps({"type": kind, "data": {"prompt_id": prompt_id, **data}}))
            await asyncio.sleep(0.01)

        await send("execution_start")
        if self.scenario == "hang":
            return
        if self.scenario == "drop":
            await ws.close()
            await asyncio.sleep(0.3)
            self.history[prompt_id] = self.entry("success", {"10": {"images": [self.image]}})
            return
        await send("execution_cached", nodes=["1"])
        await send("executing", node="3")
        for value in (1, 2, 3):
            await send("progress", value=value, max=3, node="3")
        if self.scenario == "error":
            error = {
                "node_id": "3",
                "node_type": "FlenwheelCurateSources",
                "executed": ["1"],
                "exception_type": "flenwheel.core.data.errors.CurationError",
                "exception_message": "no images given",
                "traceback": ['  File "curate.py", line 1\n'],
            }
            await send("execution_error", **error)
            self.history[prompt_id] = self.entry("error", {}, [["execution_error", error]])
            return
        await send("executing", node="10")
        await send("executed", node="10", display_node="10", output={"images": [self.image]})
        await send("execution_success")
        # ComfyUI files the history entry after the verdict; the cached node's output only lives there.
        self.history[prompt_id] = self.entry(
            "success", {"7": {"text": ["sources v1\nPASS angles >= 2"]}, "10": {"images": [self.image]}}
        )
        await send("executing", node=None)

    image = {"filename": "sources_00001_.png", "subfolder": "flenwheel", "type": "output"}

    @staticmethod
    def entry(status: str, outputs: dict, messages: list | None = None) -> dict:
        return {
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages or []},
        }

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets[request.query["clientId"]] = ws
        await ws.send_str(
            json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}})
        )
        async for _ in ws:
            pass
        return ws

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        return web.json_response({prompt_id: self.history[prompt_id]} if prompt_id in self.history else {})

    async def view(self, request: web.Request) -> web.Response:
        assert request.query["filename"] == "sources_00001_.png" and request.query["type"] == "output"
        return web.Response(body=PNG, content_type="image/png")

    async def object_info(self, request: web.Request) -> web.Response:
        return web.json_response({**core_object_info(), **pack_object_info()})

    async def close_sockets(self, app: web.Application) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()


@pytest.fixture
def comfy(request):
    """Start a FakeComfy on a free loopback port in a background thread; the scenario comes from the test."""
    fake = FakeComfy(getattr(request, "param", "success"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(fake.app, shutdown_timeout=1)
    asyncio.run_coroutine_threadsafe(runner.setup(), loop).result()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    asyncio.run_coroutine_threadsafe(site.start(), loop).result()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def run(*args: str):
    return CliRunner().invoke(cli, ["comfy", "run", *args], catch_exceptions=False)


API = str(DATA / "api" / "curate_demo.json")


def test_success_prints_outputs_downloads_images_and_exits_0(comfy, tmp_path):
    result = run(
        API,
        "--server",
        comfy.url,
        "--wait",
        "--download",
        str(tmp_path / "out"),
        "--set",
        "Curate sources.angle=left",
        "--set",
        "RandomNoise.noise_seed=7",
    )
    assert result.exit_code == 0, result.output
    [body] = comfy.posted
    assert body["client_id"] in comfy.sockets
    assert body["prompt"]["3"]["inputs"]["angle"] == "left"
    assert body["prompt"]["12"]["inputs"]["noise_seed"] == 7
    assert "node 7 'Source report' (PreviewAny):" in result.stdout and "PASS angles >= 2" in result.stdout
    assert "image sources_00001_.png (output/flenwheel)" in result.stdout
    saved = tmp_path / "out" / "flenwheel" / "sources_00001_.png"
    assert saved.read_bytes() == PNG and f"saved {saved}" in result.stdout
    assert "[1/7] node 3 'Curate sources' (FlenwheelCurateSources)" in result.stderr
    assert "1 node(s) unchanged" in result.stderr


@pytest.mark.parametrize("comfy", ["error"], indirect=True)
def test_execution_error_names_the_node_and_exits_1(comfy):
    result = run(API, "--server", comfy.url, "--wait")
    assert result.exit_code == 1
    assert (
        "node 3 'Curate sources' (FlenwheelCurateSources) failed: CurationError: no images given"
        in result.stderr
    )
    assert "curate.py" not in result.stderr
    assert "curate.py" in run(API, "--server", comfy.url, "--wait", "--traceback").stderr


@pytest.mark.parametrize("comfy", ["partial"], indirect=True)
def test_skipped_output_exits_1_naming_the_node_and_the_input(comfy):
    result = run(API, "--server", comfy.url, "--wait")
    assert result.exit_code == 1, result.output
    assert "finished" not in result.stdout
    assert "ComfyUI skipped node 10 " in result.stderr
    assert "(RandomNoise) input 'noise_seed': Value not in list" in result.stderr
    queued_only = run(API, "--server", comfy.url)
    assert queued_only.exit_code == 1 and "ComfyUI skipped node 10" in queued_only.stderr


@pytest.mark.parametrize("comfy", ["rejected"], indirect=True)
def test_rejected_prompt_prints_comfyui_validation_errors_and_exits_2(comfy):
    result = run(API, "--server", comfy.url, "--wait")
    assert result.exit_code == 2
    assert "ComfyUI rejected the prompt: Prompt outputs failed validation" in result.stderr
    assert (
        "node 3 'Curate sources' (FlenwheelCurateSources): Value not in list: angle: 'sideways'"
        in result.stderr
    )


@pytest.mark.parametrize("comfy", ["hang"], indirect=True)
def test_timeout_exits_3_and_says_the_prompt_still_runs(comfy):
    result = run(API, "--server", comfy.url, "--wait", "--timeout", "0.5")
    assert result.exit_code == 3
    assert "gave up after 0.5 s; prompt p1 is still queued or running in ComfyUI" in result.stderr


def test_unreachable_server_exits_4():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for extra in ([], ["--wait"]):
        result = run(API, "--server", f"http://127.0.0.1:{port}", *extra)
        assert result.exit_code == 4
        assert f"cannot reach ComfyUI at http://127.0.0.1:{port}" in result.stderr


def test_without_wait_the_prompt_is_only_queued(comfy):
    result = run(API, "--server", comfy.url)
    assert result.exit_code == 0
    assert "queued as prompt p1" in result.stdout


def test_ui_workflow_is_converted_with_the_servers_node_list(comfy):
    result = run(str(DATA / "curate_demo.json"), "--server", comfy.url, "--wait", "--quiet")
    assert result.exit_code == 0, result.output
    expected = json.loads((DATA / "api" / "curate_demo.json").read_text())
    assert comfy.posted[0]["prompt"] == expected


@pytest.mark.parametrize("comfy", ["drop"], indirect=True)
def test_dropped_websocket_falls_back_to_history(comfy):
    result = run(API, "--server", comfy.url, "--wait", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["status"] == "success" and report["prompt_id"] == "p1"
    assert report["outputs"]["10"]["images"][0]["filename"] == "sources_00001_.png"


def test_unusable_workflow_or_set_exits_2(comfy, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    result = run(str(bad), "--server", comfy.url)
    assert result.exit_code == 2 and "bad.json is not valid JSON" in result.stderr
    result = run(API, "--server", comfy.url, "--set", "Nope.angle=left")
    assert result.exit_code == 2
    assert "no node is titled 'Nope'; titles in this workflow: Curate sources" in result.stderr
    assert comfy.posted == []


def test_overrides_keep_the_type_of_the_value_they_replace():
    prompt = json.loads((DATA / "api" / "curate_demo.json").read_text())
    changed = apply_overrides(
        prompt,
        [
            "RandomNoise.noise_seed=12",
            "Curate sources.caption=123",
            "Curate sources.mirror=yes",
            "9.label=good",
        ],
    )
    assert changed["12"]["inputs"]["noise_seed"] == 12
    assert changed["3"]["inputs"]["caption"] == "123"
    assert changed["3"]["inputs"]["mirror"] is True
    assert changed["9"]["inputs"]["label"] == "good"
    assert prompt["12"]["inputs"]["noise_seed"] == 42
    with pytest.raises(OverrideError, match="expects an integer"):
        apply_overrides(prompt, ["RandomNoise.noise_seed=many"])
    with pytest.raises(OverrideError, match="connected to node 1"):
        apply_overrides(prompt, ["Curate sources.project=x"])
    with pytest.raises(OverrideError, match="write NODE_TITLE.input=value"):
        apply_overrides(prompt, ["noise_seed=3"])
    prompt["6"]["_meta"]["title"] = "Curate sources"
    with pytest.raises(OverrideError, match="2 nodes are called 'Curate sources'"):
        apply_overrides(prompt, ["Curate sources.angle=left"])


def test_downloads_never_overwrite_a_different_file(tmp_path):
    existing = tmp_path / "a.png"
    existing.write_bytes(b"older run")
    assert free_name(existing, b"older run") == existing
    assert free_name(existing, PNG) == tmp_path / "a_1.png"


def test_downloads_stay_inside_the_chosen_folder():
    assert safe_relative("../../etc") == Path("etc")
    assert safe_relative("/abs/run1") == Path("abs/run1")
    assert safe_relative("flenwheel\\v1") == Path("flenwheel/v1")
    assert safe_relative("") == Path(".")
