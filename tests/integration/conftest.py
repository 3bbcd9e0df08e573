"""A real ComfyUI with this pack installed, for the integration tests (skipped without COMFYUI_DIR).

COMFYUI_DIR     a ComfyUI checkout (the folder holding main.py); required
COMFYUI_PYTHON  the interpreter that has ComfyUI's requirements (default: the one running pytest)

ComfyUI runs on CPU on a free loopback port with every folder it writes (models, input, output,
user, temp) in a temporary base directory, so the checkout is never touched; the pack is linked
into that base directory's custom_nodes/ as FLENwheel, exactly as a user's git clone would sit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_FOLDER = "FLENwheel"
START_TIMEOUT_S = 180


@dataclass
class RunningComfy:
    url: str
    base: Path
    log: Path
    process: subprocess.Popen
    pack: str = PACK_FOLDER

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str):
        status, body = self.get(path)
        assert status == 200, f"GET {path} answered {status}: {body[:300]!r}"
        return json.loads(body)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    value = os.environ.get("COMFYUI_DIR")
    if not value:
        pytest.skip(
            "COMFYUI_DIR is not set: point it at a ComfyUI checkout to run the integration tests "
            "(see docs/comfyui-integration.md)"
        )
    folder = Path(value).expanduser().resolve()
    if not (folder / "main.py").is_file():
        pytest.fail(f"COMFYUI_DIR={folder} has no main.py; it must be a ComfyUI checkout")
    return folder


@pytest.fixture(scope="session")
def comfyui(comfyui_dir, tmp_path_factory) -> RunningComfy:
    """Start ComfyUI once for the session and stop it at the end."""
    base = tmp_path_factory.mktemp("comfyui-base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(PACK_ROOT, target_is_directory=True)
    port = _free_port()
    log = base / "comfyui.log"
    command = [
        os.environ.get("COMFYUI_PYTHON", sys.executable),
        "main.py",
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-auto-launch",
        "--base-directory",
        str(base),
        "--database-url",
        "sqlite:///:memory:",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=comfyui_dir, stdout=sink, stderr=subprocess.STDOUT)
    running = RunningComfy(f"http://127.0.0.1:{port}", base, log, process)
    try:
        _wait_until_up(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(comfy: RunningComfy) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if comfy.process.poll() is not None:
            pytest.fail(f"ComfyUI exited with code {comfy.process.returncode}:\n{comfy.log_text()[-4000:]}")
        try:
            if comfy.get("/object_info")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"ComfyUI did not answer within {START_TIMEOUT_S} s:\n{comfy.log_text()[-4000:]}")
