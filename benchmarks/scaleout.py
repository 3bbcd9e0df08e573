"""Scale-out wall times on the tiny models: 1 against 2 processes, and 1 core against all of them.

- generate: ``python -m flenwheel generate`` against ``torchrun --nproc_per_node 2 -m flenwheel
  generate`` (CPU, gloo) on the tiny FLUX, the same plan into two fresh projects; the datasets must
  come out the same (ids, seeds, file names), which the script checks.
- enrich: the same for ``flenwheel enrich`` on the tiny Qwen-Image-Edit.
- filter: ``filter_dataset`` with 1 worker against every core, on copies of the shared face photos
  at a few sizes, scores compared. The references are encoded before the clock starts; the pool's
  start-up (each worker loads face_recognition's models, about a second) is inside the figure.
  A control follows: a pure Python loop on 1 process against a pool on every core, the most any
  pool can gain on the machine at that moment.

Wall times include each process's start-up and model load, which dominates on tiny models with
short plans: use ``--images`` to make the plans long enough for the split to show. Every process
is limited to one torch thread, so "2 processes" means two cores; the load average at the start is
printed, since the figures mean little on a machine others are using.

    python benchmarks/scaleout.py [--images 24] [--filter-images 64] [--faces ../shared/faces]
                                  [--only generate,enrich,filter] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.images import load_image
from flenwheel.core.data.project import Project
from flenwheel.core.identity.filter import filter_dataset
from flenwheel.core.identity.identity import IdentityScorer
from flenwheel.core.identity.pool import cpu_cores
from flenwheel.core.testing import tiny

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ["obama/obama3.jpg", "obama/obama4.jpg", "obama/obama_small.jpg", "biden/biden.jpg",
          "biden/biden2.jpg", "alex_lacamoire/alex2.jpg", "group/obama_biden.jpg", "obama/obama2.jpg"]
SIDES = (640, 560, 480, 400)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(PYTHONPATH=str(ROOT.parent), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return env


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], processes: int) -> float:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--master_addr", "127.0.0.1", "--master_port", str(_port())] if processes > 1 else [sys.executable]
    start = time.perf_counter()
    result = subprocess.run([*launcher, "-m", "flenwheel", *args], env=_env(), capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - start


def _dataset(project: Path, stage: str) -> list[tuple]:
    metadata = next((project / "data" / stage / "v1").glob("*metadata.json"))
    return [(r["id"], r["seed"], r["filename"]) for r in json.loads(metadata.read_text())["images"]]


def _one_against_two(work: Path, stage: str, make_project, args: list[str]) -> dict:
    times, datasets = {}, {}
    for processes in (1, 2):
        project = make_project(work / f"{stage}{processes}")
        times[processes] = _run([args[0], str(project), *args[1:]], processes)
        datasets[processes] = _dataset(project, stage)
    return {"images": len(datasets[1]), "seconds_1_process": round(times[1], 1),
            "seconds_2_processes": round(times[2], 1), "speed_up": round(times[1] / times[2], 2),
            "same_dataset": datasets[1] == datasets[2]}


def _sources(folder: Path) -> Path:
    project = Project.init(folder, name="Bench")
    for index in range(4):
        rng = np.random.default_rng(index)
        image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
        add_sources(project, images=[(f"src{index}", image)], angle="front")
    return project.root


def bench_generate(work: Path, images: int) -> dict:
    model = tiny.ensure("flux", work / "tiny")
    variants = max(1, images // 4)
    args = ["generate", "--base-only", "--model", str(model), "--dtype", "fp32", "--device", "cpu",
            "--width", "64", "--height", "64", "--steps", "4", "--prompt-ids", "front,smiling-front,t-pose,half-left",
            "--variants", str(variants)]
    return _one_against_two(work, "synthetic", lambda folder: Project.init(folder, name="Bench").root, args)


def bench_enrich(work: Path, images: int) -> dict:
    model = tiny.ensure("qwen-edit", work / "tiny")
    args = ["enrich", "--model", str(model), "--dtype", "fp32", "--device", "cpu", "--steps", "2", "--width", "64",
            "--height", "64", "--vae-pixels", "4096", "--condition-pixels", "3136", "--gate", "off",
            "--per-source", str(max(1, min(20, images // 4)))]
    return _one_against_two(work, "enriched", _sources, args)


def bench_filter(work: Path, faces: Path, images: int) -> dict:
    project = Project.init(work / "filter", name="Bench")
    project.create_dataset("source").add_image(load_image(faces / "obama/obama.jpg"), stem="ref", caption="photo")
    synthetic = project.create_dataset("synthetic")
    for index in range(images):
        image = load_image(faces / PHOTOS[index % len(PHOTOS)])
        side = SIDES[index // len(PHOTOS) % len(SIDES)] - 8 * (index // (len(PHOTOS) * len(SIDES)))
        scale = side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        synthetic.add_image(image, stem=f"img{index:03d}", prompt="p", seed=index)
    scorer = IdentityScorer.from_project(project)  # references encoded (and face_recognition loaded) once
    times, scores = {}, {}
    for workers in (1, cpu_cores()):
        start = time.perf_counter()
        report = filter_dataset(synthetic, scorer, rescore=True, workers=workers)
        times[workers] = time.perf_counter() - start
        scores[workers] = [outcome.score.to_json() for outcome in report.outcomes]
    every = cpu_cores()
    return {"images": images, "cores": every, "seconds_1_core": round(times[1], 2),
            f"seconds_{every}_cores": round(times[every], 2), "speed_up": round(times[1] / times[every], 2),
            "same_scores": scores[1] == scores[every]}


def _spin(count: int) -> int:
    total = 0
    for value in range(count):
        total += value
    return total


def bench_control(rounds: int = 6, count: int = 4_000_000) -> dict:
    """What the machine allows right now: a pure CPU loop on 1 process against a pool on every core."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    for _ in range(rounds):
        _spin(count)
    one = time.perf_counter() - start
    start = time.perf_counter()
    with ProcessPoolExecutor(cpu_cores()) as pool:
        list(pool.map(_spin, [count] * rounds))
    every = time.perf_counter() - start
    return {"seconds_1_core": round(one, 2), f"seconds_{cpu_cores()}_cores": round(every, 2),
            "speed_up": round(one / every, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="Generate/enrich images per run (about).")
    parser.add_argument("--filter-images", type=int, default=64, help="Images the filter scores.")
    shared = Path(os.environ.get("FLENWHEEL_SHARED", ROOT.parent / "shared"))
    parser.add_argument("--faces", type=Path, default=shared / "faces")
    parser.add_argument("--only", default="generate,enrich,filter")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    load = os.getloadavg()
    results: dict = {"cpu_cores": cpu_cores(), "load_average_at_start": [round(v, 2) for v in load]}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        wanted = options.only.split(",")
        if "generate" in wanted:
            results["generate"] = bench_generate(work, options.images)
        if "enrich" in wanted:
            results["enrich"] = bench_enrich(work, options.images)
        if "filter" in wanted:
            results["filter"] = bench_filter(work, options.faces, options.filter_images)
            results["control_cpu_loop"] = bench_control()
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    if options.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        print(f"{name}: {figures}")


if __name__ == "__main__":
    main()
