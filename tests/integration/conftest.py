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
import shutil
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


def allowed_roots(tmp_path_factory, tiny_cache: Path) -> str:
    """``FLENWHEEL_ALLOWED_ROOTS`` for the test ComfyUI: the folders the tests keep projects, photos and tiny
    models in (outside ComfyUI's output/flenwheel, where a graph may not reach unless the user allows it)."""
    shared = Path(os.environ.get("FLENWHEEL_SHARED") or PACK_ROOT.parent / "shared")
    roots = [tmp_path_factory.getbasetemp(), tiny_cache, shared]
    return os.pathsep.join(str(Path(root).resolve()) for root in roots)


@pytest.fixture(scope="session")
def comfyui(comfyui_dir, tmp_path_factory, tiny_cache) -> RunningComfy:
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
        env = {**os.environ, "FLENWHEEL_ALLOWED_ROOTS": allowed_roots(tmp_path_factory, tiny_cache)}
        process = subprocess.Popen(command, cwd=comfyui_dir, stdout=sink, stderr=subprocess.STDOUT, env=env)
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


#: Snapshots of one project in flywheel order; a template starts from the state its stage expects.
FLYWHEEL_STATES = ("curated", "enriched", "reviewed", "char_v1", "synthetic", "pristine", "corrections",
                   "triplets", "editor_v1")


@dataclass
class FlywheelStates:
    folder: Path

    def copy(self, state: str, target: Path) -> Path:
        """A private copy of the project as it was at ``state`` (templates change what they run on)."""
        if state not in FLYWHEEL_STATES:
            raise KeyError(f"no flywheel state '{state}'; known: {', '.join(FLYWHEEL_STATES)}")
        shutil.copytree(self.folder / state, target, symlinks=True)
        return target


@pytest.fixture(scope="session")
def flywheel_states(tmp_path_factory, tiny_flux, tiny_qwen_edit) -> FlywheelStates:
    """One tiny project taken through both flywheels with the Python API (the engine behind
    ``flenwheel run``, with its demo/test auto-review), snapshotted after every stage."""
    import torch

    from flenwheel.core.data.project import Project
    from flenwheel.core.editor.triplets import build_triplets
    from flenwheel.core.review.gate import scope_for
    from flenwheel.core.turn.demo import demo_config
    from flenwheel.core.turn.demo_photos import packaged_character
    from flenwheel.core.turn.turn import Turn

    folder = tmp_path_factory.mktemp("flywheel-states")
    project = Project.init(folder / "work", name="Tiny character")
    config = demo_config({"flux": tiny_flux, "qwen-edit": tiny_qwen_edit}, packaged_character(folder / "photos"))
    turn = Turn(project, config, auto=True, log=lambda _: None)

    def snapshot(state: str) -> None:
        shutil.copytree(project.root, folder / state, symlinks=True)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models run several times faster on one thread of a busy CPU
    try:
        turn.curate()
        snapshot("curated")
        enriched = turn.enrich().dataset.version
        snapshot("enriched")
        turn.review("enriched", scope_for(project, "enriched", version=enriched))
        snapshot("reviewed")
        lora = turn.train("v1")
        snapshot("char_v1")
        scope = turn.generate_and_filter(lora)
        snapshot("synthetic")
        turn.review("synthetic", scope)
        turn.release_flux()
        snapshot("pristine")
        _fix_every_correction(project, enriched)
        snapshot("corrections")
        build_triplets(project, identity="off", log=lambda _: None)
        snapshot("triplets")
        _train_editor_lora(project, tiny_qwen_edit)
        snapshot("editor_v1")
    finally:
        torch.set_num_threads(threads)
    return FlywheelStates(folder)


def _fix_every_correction(project, version: str) -> None:
    """Drop a corrected target for every edit reviewed as needs_correction, as a user would."""
    import numpy as np
    from PIL import Image

    from flenwheel.core.data.images import png_bytes
    from flenwheel.core.editor.correction_targets import store_fix
    from flenwheel.core.review.store import ReviewStore

    dataset = project.dataset("enriched", version)
    decided = ReviewStore(project).current("enriched", version)
    fixed = [record for record in dataset.records
             if decided.get(record.id) and decided[record.id].label == "needs_correction"]
    assert fixed, "the auto-review marked no edit as needs_correction"
    for index, record in enumerate(fixed):
        pixels = np.random.default_rng(index).integers(0, 256, (record.height, record.width, 3), dtype=np.uint8)
        store_fix(project, version, record.id, png_bytes(Image.fromarray(pixels, "RGB")))


def _train_editor_lora(project, tiny_qwen_edit: Path) -> None:
    from flenwheel.core.training.launcher import run_training
    from flenwheel.core.training.planning import prepare_run
    from flenwheel.core.turn.demo import TINY_TRAINING

    overrides = {**TINY_TRAINING, "model": str(tiny_qwen_edit), "max_train_steps": 4, "save_every": 4,
                 "condition_pixels": 56 * 56}
    plan = prepare_run(project, "qwen-edit", "latest", overrides)
    result = run_training("qwen-edit", plan.config_path, plan.output_dir)
    assert result.status == "finished", f"tiny editor LoRA training ended {result.status}"


@pytest.fixture(scope="session")
def comfy_loras(comfyui, tiny_qwen_edit) -> dict[str, str]:
    """LoRA files in the running ComfyUI's models/loras, by placeholder name (e.g. a tiny angle LoRA)."""
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    folder = comfyui.base / "models" / "loras"
    folder.mkdir(parents=True, exist_ok=True)
    make_tiny_lora(tiny_qwen_edit, folder / "tiny_qwen_angles.safetensors")
    return {"tiny_angle_lora": "tiny_qwen_angles.safetensors"}
