"""Our FLUX trainer against diffusers' DreamBooth LoRA script: seconds per step and peak RSS.

Both train the same model (the tiny FLUX pipeline unless --model is given) on the same images with
the same rank, resolution, batch size, optimiser, learning rate, guidance and T5 length, with latents
and text embeddings cached. Seconds per step are each trainer's own loop timing, without start-up
(imports, model loading, final save): ours from the timestamps of its first and last ``step``
events, diffusers' from its progress bar's final average rate. Peak RSS is the whole process's
maximum resident set size (``os.wait4``); wall seconds include everything.

The reference script is diffusers' public ``examples/dreambooth/train_dreambooth_lora_flux.py``;
pass its path (keep it in the git-ignored ``third_party/``; never commit it):

    python benchmarks/train_overhead.py --reference third_party/train_dreambooth_lora_flux.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a photo of ohwx_char person"


def run_measured(command: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run a command; wall seconds and the peak RSS of it and its children (Linux ``ru_maxrss`` is KiB)."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with status {process.returncode}; see {log}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}


def make_images(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, size)[None, :, None]
        array = a * (1 - ramp) + b * ramp + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(folder / f"{index}.png")


def ours(args: argparse.Namespace, model: str, images: Path, work: Path, steps: int) -> list[str]:
    import yaml

    sys.path.insert(0, str(ROOT.parent))
    from flenwheel.core.training.launcher import trainer_command

    output = work / f"ours_{steps}"
    shutil.rmtree(output, ignore_errors=True)
    config = {
        "trainer": "flux",
        "model": model,
        "dataset_path": str(images),
        "output_path": str(output),
        "default_caption": PROMPT,
        "lora_rank": args.rank,
        "resolution": args.resolution,
        "enable_buckets": False,
        "bucket_step": 16,
        "batch_size": 1,
        "mixed_precision": "no",
        "gradient_checkpointing": False,
        "optimizer": "adamw",
        "learning_rate": 1e-4,
        "max_train_steps": steps,
        "save_every": steps,
        "sample_every": 0,
        "caption_dropout": 0.0,
        "guidance_scale": 1.0,
        "max_sequence_length": 512,
        "seed": 0,
        "resume": "none",
        "save_dtype": "fp32",
    }
    path = work / f"ours_{steps}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return trainer_command("flux", path)


def reference(args: argparse.Namespace, model: str, images: Path, work: Path, steps: int) -> list[str]:
    output = work / f"reference_{steps}"
    shutil.rmtree(output, ignore_errors=True)
    return [
        sys.executable,
        str(args.reference),
        "--pretrained_model_name_or_path",
        model,
        "--instance_data_dir",
        str(images),
        "--instance_prompt",
        PROMPT,
        "--output_dir",
        str(output),
        "--resolution",
        str(args.resolution),
        "--train_batch_size",
        "1",
        "--max_train_steps",
        str(steps),
        "--rank",
        str(args.rank),
        "--learning_rate",
        "1e-4",
        "--lr_scheduler",
        "constant",
        "--lr_warmup_steps",
        "0",
        "--seed",
        "0",
        "--mixed_precision",
        "no",
        "--cache_latents",
        "--guidance_scale",
        "1",
        "--max_sequence_length",
        "512",
        "--checkpointing_steps",
        "1000000",
        "--dataloader_num_workers",
        "0",
        "--optimizer",
        "AdamW",
        "--report_to",
        "tensorboard",
    ]


def loop_seconds_per_step(name: str, log: Path, work: Path, steps: int) -> float:
    """Per-step time of the training loop alone, as each trainer reports it."""
    text = log.read_text(encoding="utf-8", errors="replace")
    if name == "ours":
        times = [
            json.loads(line)["time"] for line in text.splitlines() if line.startswith('{"event": "step"')
        ]
        return (times[-1] - times[0]) / (len(times) - 1)
    rates = re.findall(rf"{steps}/{steps} \[[0-9:]+<[^,\]]*, *([0-9.]+)(it/s|s/it)", text)
    if not rates:
        raise SystemExit(f"no final progress-bar rate in {log}")
    value, unit = rates[-1]
    return 1.0 / float(value) if unit == "it/s" else float(value)


def measure(name: str, build, args, model, images, work, env) -> dict[str, float]:
    """The lowest of ``repeats`` runs for each figure: a shared machine only ever adds time and memory."""
    runs = []
    for attempt in range(args.repeats):
        log = work / f"{name}_{attempt}.log"
        result = run_measured(build(args, model, images, work, args.steps), env, log)
        result["s_per_step"] = loop_seconds_per_step(name, log, work, args.steps)
        runs.append(result)
    return {key: min(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", required=True, type=Path, help="path to train_dreambooth_lora_flux.py")
    parser.add_argument("--model", help="diffusers FLUX folder (default: build the tiny model)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1, help="repeat and keep the fastest (noisy machines)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for both trainers")
    args = parser.parse_args()
    if not args.reference.is_file():
        raise SystemExit(
            f"{args.reference} not found: save diffusers' examples/dreambooth/"
            "train_dreambooth_lora_flux.py there (third_party/ is git-ignored)"
        )
    work = Path(tempfile.mkdtemp(prefix="flenwheel-overhead-"))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT.parent))
        from flenwheel.core.testing import tiny

        model = str(tiny.build("flux", work / "tiny-flux"))
    images = work / "images"
    make_images(images, args.images, args.resolution)
    results = {
        name: measure(name, build, args, model, images, work, env)
        for name, build in (("ours", ours), ("diffusers", reference))
    }
    print(
        f"model {model}, rank {args.rank}, {args.resolution}px, batch 1, {args.steps} steps, "
        f"{args.threads} thread(s)"
    )
    print(f"{'trainer':12s} {'s/step':>10s} {'peak RSS MiB':>14s} {'wall s':>8s}")
    for name, result in results.items():
        print(
            f"{name:12s} {result['s_per_step']:10.4f} {result['peak_rss_mib']:14.1f} {result['wall_s']:8.1f}"
        )
    ratio = {key: results["ours"][key] / results["diffusers"][key] for key in ("s_per_step", "peak_rss_mib")}
    print(
        f"ratio ours/diffusers: s/step {ratio['s_per_step']:.2f}x, peak RSS {ratio['peak_rss_mib']:.2f}x "
        "(goal: <= 1.0x on both)"
    )
    print(json.dumps({"results": results, "ratio": ratio}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
