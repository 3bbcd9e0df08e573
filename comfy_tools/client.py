"""Run an API-format workflow on a ComfyUI server, the way the browser does, and report how it went.

The websocket (``/ws?clientId=``) is opened before the prompt is posted, so no event of a fast run
is missed; the run's verdict comes from ``execution_success`` / ``execution_error`` /
``execution_interrupted`` and its outputs from ``/history/{id}`` (which also holds the outputs of
cached nodes). If the websocket drops mid-run the client falls back to polling the history, so a
long training run is not reported lost because a proxy closed an idle socket. Every way a run can
end maps to one status, which the CLI uses as its exit code.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode

import aiohttp

from ..core.data.atomic import atomic_write_bytes
from ..core.data.errors import FlenwheelError

EventHandler = Callable[[str, dict[str, Any]], None]
PromptBuilder = Callable[["ComfyClient"], Awaitable[dict[str, Any]]]
HISTORY_POLL_S = (0.05, 1.0)  # first and longest pause between /history polls
HISTORY_GRACE_S = 10.0


class RunStatus(IntEnum):
    SUCCESS = 0
    EXECUTION_ERROR = 1
    REJECTED = 2
    TIMEOUT = 3
    UNREACHABLE = 4


@dataclass
class RunResult:
    status: RunStatus
    message: str
    prompt_id: str | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    downloaded: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.name.lower(),
            "exit_code": int(self.status),
            "message": self.message,
            "prompt_id": self.prompt_id,
            "outputs": self.outputs,
            "details": self.details,
            "downloaded": [str(path) for path in self.downloaded],
        }


class RunEnded(Exception):
    """Carries a finished RunResult out of the nested run steps."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.message)
        self.result = result


class ComfyClient:
    """The four endpoints a scripted run needs, plus /object_info for converting UI workflows."""

    def __init__(self, server: str, session: aiohttp.ClientSession, client_id: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.session = session
        self.client_id = client_id or uuid.uuid4().hex

    @property
    def ws_url(self) -> str:
        base = "ws" + self.server[4:] if self.server.startswith("http") else self.server
        return f"{base}/ws?{urlencode({'clientId': self.client_id})}"

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self.session.ws_connect(self.ws_url, heartbeat=30)
        except aiohttp.WSServerHandshakeError as exc:
            raise RunEnded(
                RunResult(
                    RunStatus.UNREACHABLE,
                    f"{self.server} answered, but not as a ComfyUI "
                    f"server (websocket refused: HTTP {exc.status})",
                )
            ) from None

    async def object_info(self) -> dict[str, Any]:
        async with self.session.get(f"{self.server}/object_info") as response:
            response.raise_for_status()
            return await response.json()

    async def queue(self, prompt: dict[str, Any]) -> dict[str, Any]:
        """POST /prompt; a refusal ends the run with ComfyUI's validation errors."""
        body = {"prompt": prompt, "client_id": self.client_id}
        async with self.session.post(f"{self.server}/prompt", json=body) as response:
            text = await response.text()
            try:
                answer = json.loads(text)
            except json.JSONDecodeError:
                answer = {"error": {"message": text.strip()[:500] or f"HTTP {response.status}"}}
            if response.status != 200 or "prompt_id" not in answer:
                raise RunEnded(
                    RunResult(RunStatus.REJECTED, rejection_message(answer, prompt), details=answer)
                )
            return answer

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        async with self.session.get(f"{self.server}/history/{prompt_id}") as response:
            response.raise_for_status()
            return (await response.json()).get(prompt_id)

    async def image(self, ref: dict[str, Any]) -> bytes:
        query = {
            "filename": ref["filename"],
            "subfolder": ref.get("subfolder", ""),
            "type": ref.get("type", "output"),
        }
        async with self.session.get(f"{self.server}/view", params=query) as response:
            response.raise_for_status()
            return await response.read()


def rejection_message(answer: dict[str, Any], prompt: dict[str, Any]) -> str:
    """ComfyUI's validation errors, one line per problem, naming each node by id and title."""
    error = answer.get("error") or {}
    if isinstance(error, str):
        error = {"message": error}
    head = error.get("message") or "prompt rejected"
    if error.get("details"):
        head += f": {error['details']}"
    lines = [f"ComfyUI rejected the prompt: {head}"]
    for node_id, entry in (answer.get("node_errors") or {}).items():
        label = node_label(prompt, node_id, entry.get("class_type"))
        for problem in entry.get("errors") or []:
            detail = f": {problem['details']}" if problem.get("details") else ""
            name = (problem.get("extra_info") or {}).get("input_name")
            where = f" input '{name}'" if name and f"{name}:" not in detail else ""
            lines.append(f"  {label}{where}: {problem.get('message', 'invalid')}{detail}")
    return "\n".join(lines)


def skipped_outputs(node_errors: dict[str, Any], prompt: dict[str, Any]) -> str:
    """The verdict on a prompt ComfyUI queued only in part: which output nodes it skipped, and why."""
    outputs = sorted({str(out) for entry in node_errors.values() for out in entry.get("dependent_outputs") or []})
    named = ", ".join(node_label(prompt, out) for out in outputs) or "some outputs"
    problems = "; ".join(line.strip() for line in rejection_message({"node_errors": node_errors}, prompt)
                         .splitlines()[1:])
    return f"ComfyUI skipped {named} because of invalid inputs: {problems}"


def node_label(prompt: dict[str, Any], node_id: Any, node_type: str | None = None) -> str:
    node = prompt.get(str(node_id)) or {}
    node_type = node_type or node.get("class_type") or "?"
    title = (node.get("_meta") or {}).get("title")
    return f"node {node_id} '{title}' ({node_type})" if title else f"node {node_id} ({node_type})"


async def follow(
    ws: aiohttp.ClientWebSocketResponse, prompt_id: str, prompt: dict[str, Any], on_event: EventHandler | None
) -> RunResult | None:
    """Read events for this prompt until its verdict; None if the socket closed first."""
    outputs: dict[str, dict[str, Any]] = {}
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue  # binary frames are live previews
        event = json.loads(message.data)
        kind, data = event.get("type", ""), event.get("data") or {}
        if data.get("prompt_id", prompt_id) != prompt_id:
            continue
        if on_event:
            on_event(kind, data)
        if kind == "executed" and data.get("output"):
            outputs[str(data.get("node"))] = data["output"]
        elif kind == "execution_error":
            label = node_label(prompt, data.get("node_id"), data.get("node_type"))
            kind_name = str(data.get("exception_type") or "error").rsplit(".", 1)[-1]
            reason = f"{kind_name}: {str(data.get('exception_message', '')).strip()}"
            return RunResult(RunStatus.EXECUTION_ERROR, f"{label} failed: {reason}", prompt_id, outputs, data)
        elif kind == "execution_interrupted":
            label = node_label(prompt, data.get("node_id"), data.get("node_type"))
            return RunResult(RunStatus.EXECUTION_ERROR, f"interrupted at {label}", prompt_id, outputs, data)
        elif kind == "execution_success" or (
            kind == "executing" and data.get("node") is None and "prompt_id" in data
        ):
            return RunResult(RunStatus.SUCCESS, f"prompt {prompt_id} finished", prompt_id, outputs)
    return None


async def settle(
    client: ComfyClient, verdict: RunResult | None, prompt_id: str, prompt: dict[str, Any]
) -> RunResult:
    """Complete the verdict from /history (cached nodes' outputs), or find it there if the socket dropped."""
    entry = await history_entry(client, prompt_id, HISTORY_GRACE_S if verdict else None)
    if entry is None:
        return verdict
    outputs = {**(verdict.outputs if verdict else {}), **(entry.get("outputs") or {})}
    if verdict is not None:
        verdict.outputs = outputs
        return verdict
    for kind, data in (entry.get("status") or {}).get("messages") or []:
        if kind in ("execution_error", "execution_interrupted"):
            label = node_label(prompt, data.get("node_id"), data.get("node_type"))
            reason = data.get("exception_message") or kind.replace("_", " ")
            return RunResult(RunStatus.EXECUTION_ERROR, f"{label} failed: {reason}", prompt_id, outputs, data)
    return RunResult(RunStatus.SUCCESS, f"prompt {prompt_id} finished", prompt_id, outputs)


async def history_entry(client: ComfyClient, prompt_id: str, patience: float | None) -> dict[str, Any] | None:
    """Poll until ComfyUI files the finished prompt in its history (just after the verdict event).

    Without patience this polls until the caller's overall timeout.
    """
    waited, pause = 0.0, HISTORY_POLL_S[0]
    while True:
        entry = await client.history(prompt_id)
        if entry:
            return entry
        if patience is not None and waited >= patience:
            return None
        await asyncio.sleep(pause)
        waited += pause
        pause = min(pause * 2, HISTORY_POLL_S[1])


def output_images(outputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [ref for output in outputs.values() for ref in output.get("images") or [] if "filename" in ref]


async def download(client: ComfyClient, outputs: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """Save every output image under ``folder``; a different file already there keeps its name."""
    saved = []
    for ref in output_images(outputs):
        data = await client.image(ref)
        name = Path(ref["filename"]).name
        target = free_name(folder / safe_relative(ref.get("subfolder", "")) / name, data)
        atomic_write_bytes(target, data)
        saved.append(target)
    return saved


def safe_relative(subfolder: str) -> Path:
    """The server's subfolder as a path that cannot leave the download folder."""
    parts = PurePosixPath(subfolder.replace("\\", "/")).parts
    return Path(*[part for part in parts if part not in ("/", "..")])


def free_name(target: Path, data: bytes) -> Path:
    """``target`` unless another file already holds that name, then ``name_1.png``, ``name_2.png``..."""
    candidate, index = target, 0
    while candidate.exists() and candidate.read_bytes() != data:
        index += 1
        candidate = target.with_name(f"{target.stem}_{index}{target.suffix}")
    return candidate


async def run_prompt(
    server: str,
    prompt: dict[str, Any] | PromptBuilder,
    *,
    wait: bool = True,
    timeout: float | None = None,
    on_event: EventHandler | None = None,
    download_to: Path | None = None,
    connect_timeout: float = 10.0,
) -> RunResult:
    """Queue ``prompt`` and, with ``wait``, see it through; never raises for anything the server does.

    ``prompt`` may be an async builder that gets the connected client (to read /object_info when
    converting a UI workflow); a FlenwheelError it raises rejects the run before anything is queued.
    """
    state: dict[str, Any] = {}
    session_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, connect=connect_timeout)
    try:
        async with aiohttp.ClientSession(timeout=session_timeout) as session:
            client = ComfyClient(server, session)
            steps = _run(client, prompt, wait, on_event, download_to, state)
            return await asyncio.wait_for(steps, timeout)
    except RunEnded as ended:
        ended.result.prompt_id = ended.result.prompt_id or state.get("prompt_id")
        return ended.result
    except asyncio.TimeoutError:
        where = (
            f"prompt {state['prompt_id']} is still queued or running in ComfyUI"
            if "prompt_id" in state
            else "the prompt was not queued"
        )
        return RunResult(RunStatus.TIMEOUT, f"gave up after {timeout:g} s; {where}", state.get("prompt_id"))
    except (aiohttp.ClientConnectionError, aiohttp.ClientResponseError, OSError) as exc:
        return RunResult(
            RunStatus.UNREACHABLE, f"cannot reach ComfyUI at {server}: {exc}", state.get("prompt_id")
        )


def _partial(result: RunResult, prompt: dict[str, Any], details: dict[str, Any] | None = None) -> RunResult:
    """A run whose queue answer listed node errors skipped outputs: that is a failure (exit 1), not a success."""
    result.details.update(details or {})
    skipped = result.details.get("node_errors")
    if skipped and result.status == RunStatus.SUCCESS:
        result.status = RunStatus.EXECUTION_ERROR
        result.message = skipped_outputs(skipped, prompt)
    return result


async def _run(
    client: ComfyClient,
    prompt: dict[str, Any] | PromptBuilder,
    wait: bool,
    on_event: EventHandler | None,
    download_to: Path | None,
    state: dict[str, Any],
) -> RunResult:
    ws = await client.connect() if wait else None
    try:
        if callable(prompt):
            try:
                prompt = await prompt(client)
            except FlenwheelError as exc:
                raise RunEnded(RunResult(RunStatus.REJECTED, str(exc))) from None
        queued = await client.queue(prompt)
        prompt_id = state["prompt_id"] = queued["prompt_id"]
        details = {"node_errors": queued["node_errors"]} if queued.get("node_errors") else {}
        if not wait:
            result = RunResult(RunStatus.SUCCESS, f"queued as prompt {prompt_id}", prompt_id, details=details)
            return _partial(result, prompt)
        verdict = await follow(ws, prompt_id, prompt, on_event)
        result = _partial(await settle(client, verdict, prompt_id, prompt), prompt, details)
        if download_to is not None and (result.status == RunStatus.SUCCESS or result.details.get("node_errors")):
            result.downloaded = await download(client, result.outputs, download_to)
        return result
    finally:
        if ws is not None:
            await ws.close()
