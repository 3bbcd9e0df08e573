"""Scale-out: generate and enrich under torchrun (2 CPU processes, gloo) write the one-process dataset.

The multi-process tests start real launchers on the tiny models, so they take a minute or more on
a busy 2-core machine and are marked slow. The merge and the settings check are also tested in
one process, with the collective calls answered by hand.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flenwheel.core.data.distributed import Processes, launched, merge_records
from flenwheel.core.data.errors import FlenwheelError

ROOT = Path(__file__).resolve().parent.parent
GENERATE = ["--base-only", "--dtype", "fp32", "--device", "cpu", "--width", "32", "--height", "32", "--steps", "2",
            "--prompt-ids", "front,smiling-front,t-pose,half-left", "--variants", "2"]
ENRICH = ["--dtype", "fp32", "--device", "cpu", "--steps", "2", "--width", "64", "--height", "64",
          "--vae-pixels", "4096", "--condition-pixels", "3136", "--per-source", "2", "--gate", "off"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT.parent), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", **extra)
    return env


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flenwheel(*args: object, processes: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m flenwheel ARGS``, under ``torchrun --nproc_per_node N`` when N > 1."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--master_addr", "127.0.0.1", "--master_port", str(_port())] if processes > 1 else [sys.executable]
    result = subprocess.run([*launcher, "-m", "flenwheel", *map(str, args)], env=_env(), capture_output=True,
                            text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def start_rank(rank: int, port: int, *args: object, log: Path) -> subprocess.Popen:
    """One process of a 2-process run, started the way torchrun starts it (its environment)."""
    env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    return subprocess.Popen([sys.executable, "-m", "flenwheel", *map(str, args)], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def records(project: Path, stage: str) -> list[tuple]:
    metadata = next((project / "data" / stage / "v1").glob("*metadata.json"))
    return [(r["id"], r["seed"], r["filename"]) for r in json.loads(metadata.read_text())["images"]]


def pngs(project: Path, stage: str) -> list[str]:
    return sorted(p.name for p in (project / "data" / stage / "v1").glob("*.png"))


def new_project(folder: Path) -> Path:
    from flenwheel.core.data.project import Project

    return Project.init(folder, name="Test Character").root


def with_sources(folder: Path) -> Path:
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.data.project import Project

    project = Project.init(folder, name="Test Character")
    for index in range(3):
        rng = np.random.default_rng(index)
        image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
        add_sources(project, images=[(f"src{index}", image)], angle="front")
    return project.root


# One process: the launcher detection, the merge and the settings check ---------------------------

class Answered(Processes):
    """Process 0 of two, whose collective calls return what the test says the other process sent."""

    def __init__(self, other: object) -> None:
        super().__init__(rank=0, count=2)
        self.other = other

    def gather(self, value):
        return [value, self.other(value) if callable(self.other) else self.other]

    def share(self, value):
        return value


def test_python_dash_m_flenwheel_runs_the_cli():
    result = flenwheel("--help")
    assert "Usage: flenwheel" in result.stdout and "generate" in result.stdout


def test_without_a_launcher_nothing_is_split(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not launched()
    single = Processes.current()
    assert (single.distributed, single.is_main, single.split([1, 2, 3]), single.device_for(None)) == (
        False, True, [1, 2, 3], None)


def test_a_process_with_other_settings_fails_before_any_work():
    from flenwheel.core.data.distributed import settings_hash

    Answered(lambda value: value).agree("generation settings", {"steps": 2})
    with pytest.raises(FlenwheelError, match="process.es. 1 of 2 were started with other generation settings"):
        Answered(settings_hash({"steps": 3})).agree("generation settings", {"steps": 2})


def test_merge_refuses_missing_items_and_orders_the_rest(project, noise_image):
    dataset = project.create_dataset("synthetic")
    for index in (2, 0):
        dataset.add_image(noise_image((32, 32), seed=index), stem=f"img{index}", prompt=f"p{index}", seed=index)
    key = lambda record: record.seed  # noqa: E731
    message = merge_records(dataset, [0, 1, 2], key, describe=lambda seed: f"seed {seed}")
    assert message and "missing 1 of 3 planned images (seed 1)" in message and "run the same command again" in message
    with pytest.raises(FlenwheelError, match="missing 1 of 3"):
        Answered([]).merge(dataset, [0, 1, 2], key, describe=lambda seed: f"seed {seed}")
    assert [r.seed for r in dataset.records] == [2, 0]
    Answered([1]).merge(dataset, [0, 1, 2], key)
    assert [r.seed for r in dataset.records] == [0, 2] and dataset.verify().ok


# Two processes under a launcher --------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_generate_writes_the_one_process_dataset(tmp_path, tiny_flux):
    one, two = new_project(tmp_path / "one"), new_project(tmp_path / "two")
    flenwheel("generate", one, "--model", tiny_flux, *GENERATE)
    flenwheel("generate", two, "--model", tiny_flux, *GENERATE, processes=2)
    assert records(two, "synthetic") == records(one, "synthetic") and len(records(one, "synthetic")) == 8
    assert pngs(two, "synthetic") == pngs(one, "synthetic")
    assert "ok" in flenwheel("verify", two).stdout


@pytest.mark.slow
def test_torchrun_enrich_writes_the_one_process_dataset(tmp_path, tiny_qwen_edit):
    one, two = with_sources(tmp_path / "one"), with_sources(tmp_path / "two")
    flenwheel("enrich", one, "--model", tiny_qwen_edit, *ENRICH)
    flenwheel("enrich", two, "--model", tiny_qwen_edit, *ENRICH, processes=2)
    assert records(two, "enriched") == records(one, "enriched") and len(records(one, "enriched")) == 6
    assert pngs(two, "enriched") == pngs(one, "enriched")
    assert "ok" in flenwheel("verify", two).stdout


@pytest.mark.slow
def test_a_killed_process_loses_nothing_and_a_rerun_finishes(tmp_path, tiny_flux):
    project, port = new_project(tmp_path / "p"), _port()
    args = ["generate", project, "--model", tiny_flux, *GENERATE[:-1], "6"]
    ranks = [start_rank(rank, port, *args, log=tmp_path / f"rank{rank}.log") for rank in (0, 1)]
    metadata = project / "data" / "synthetic" / "v1" / "metadata.json"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and ranks[1].poll() is None:
        if metadata.is_file() and len(json.loads(metadata.read_text())["images"]) >= 2:
            break
        time.sleep(0.2)
    ranks[1].send_signal(signal.SIGKILL)
    ranks[0].send_signal(signal.SIGTERM)  # what torchrun does to the others when one process dies
    for rank in ranks:
        rank.wait(timeout=60)
    made = len(records(project, "synthetic"))
    assert 2 <= made < 24, (tmp_path / "rank0.log").read_text()[-2000:]
    version = project / "data" / "synthetic" / "v1"
    for path in version.glob("*.png"):  # whole images only: each was written aside and moved in
        with Image.open(path) as image:
            image.load()
    assert all((version / name).is_file() for _, _, name in records(project, "synthetic"))
    flenwheel(*args, processes=2)
    assert len(records(project, "synthetic")) == 24 and len(set(records(project, "synthetic"))) == 24
    assert "ok" in flenwheel("verify", project).stdout


@pytest.mark.slow
def test_processes_with_other_config_files_fail_at_start(tmp_path, tiny_flux):
    project, port = new_project(tmp_path / "p"), _port()
    base = ["generate", project, "--model", tiny_flux, *GENERATE]
    ranks = [start_rank(rank, port, *base, "--seed", rank, log=tmp_path / f"rank{rank}.log") for rank in (0, 1)]
    assert [rank.wait(timeout=300) for rank in ranks] == [1, 1]
    assert "were started with other generation settings" in (tmp_path / "rank0.log").read_text()
    assert not (project / "data" / "synthetic" / "v1").exists()


SMALL_CARD = """
portraits:
  angles: [front]
  expressions: [neutral, smiling]
poses:
  items:
    - {id: t-pose, pose: t-pose, view: front, prompt: "full body photo of [trigger] in T-pose, front view"}
"""


@pytest.mark.slow
def test_torchrun_benchmark_run_writes_the_one_process_card(tmp_path, tiny_flux):
    from flenwheel.core.data.project import Project
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    card = tmp_path / "card.yaml"
    card.write_text(SMALL_CARD, encoding="utf-8")
    lora = make_tiny_lora(tiny_flux, tmp_path / "char_lora_v1.safetensors", seed=1)
    roots = []
    for name in ("one", "two"):
        project = Project.init(tmp_path / name, name="Test Character")
        project.flux_lora_dir("v1").mkdir(parents=True)
        (project.flux_lora_dir("v1") / "char_lora_v1.safetensors").write_bytes(Path(lora).read_bytes())
        roots.append(project.root)
    args = ["--lora", "char_v1", "--tries", "2", "--card", card, "--checks", "resolution", "--width", "64",
            "--height", "64", "--steps", "2", "--model", tiny_flux, "--dtype", "fp32", "--device", "cpu"]
    flenwheel("benchmark", "run", roots[0], *args)
    flenwheel("benchmark", "run", roots[1], *args, processes=2)
    assert records(roots[1], "benchmark") == records(roots[0], "benchmark") and len(records(roots[0], "benchmark")) == 6
    results = [json.loads((root / "benchmarks" / "char_v1" / "results.json").read_text()) for root in roots]
    assert results[1]["summary"] == results[0]["summary"]
    assert "ok" in flenwheel("verify", roots[1]).stdout
