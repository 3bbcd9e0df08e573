"""The one prepared GPU check: training, enrichment and generation memory and speed, in one table.

Full-size architectures with random weights, initialised directly on the GPU in bf16
(``with torch.device("cuda")``), so nothing is downloaded and building a 12-20 B model takes
seconds. It reuses the three benchmarks (``gpu_train_memory.py``, ``enrich_throughput.py``,
``generate_throughput.py``) and was sized to finish within about 8 minutes on one H100/H200 before
the memory-option rows were added (not timed on a GPU since; ``--sections`` splits it):

- LoRA training, rank 16, batch 1, cached latents and text embeddings (random tensors of the real
  shapes, as the trainers hold them once the encoders have left the GPU), 1 warm-up + 2 timed steps:
  FLUX.1-dev at 512 and 1024 px, Qwen-Image-Edit-2509 at a 1024x1024 target with one 1024x1024
  source, FLUX.2 [klein] 4B and Z-Image (Base, 6 B) at 1024 px (2511 trains as 2509: the same
  architecture); modes bf16,
  bf16 + gradient checkpointing, NF4 + checkpointing + 8-bit AdamW, and the trainer's memory options
  through its own code: ``quantize: fp8``, ``blocks_to_swap: 16`` (klein: its maximum, 13) and both.
  The trainer has no offload option (its encoders leave the GPU after caching, always); the table
  says so rather than invent one.
- Enrichment (Qwen-Image-Edit-2509 edit, true CFG 4) and generation (FLUX.1-dev, guidance 3.5; and
  Z-Image-Turbo without CFG, its own setting: 6.15 B transformer, Qwen3-4B text encoder) at
  1024x1024, 8 denoising steps: s/image and peak VRAM for bf16, NF4 (not Z-Image), model CPU
  offload, and the loaders' ``quantize=fp8``, ``offload=group`` and both (``apply_memory_options``).
- Goals beside each figure: FLUX LoRA at 1024 px <= 10 GB; Qwen-Edit LoRA <= 20 GB without block
  swapping; enrichment <= 16 GB.

It prints one table and writes it as JSON (``--out``, default ``$OUT/gpu_check.json`` when ``OUT``
is set, else ``gpu_check.json``). ``--tiny`` runs the same code on the CPU with tiny configs (modes
that need CUDA are listed as skipped); the test suite runs it so the script cannot rot.

Running it on the device machine (PyTorch, transformers, peft and accelerate are there; diffusers,
bitsandbytes, pydantic and PyYAML are not, and it cannot download). Here, fetch wheels for its
Python 3.12 into an ignored folder of the working tree (51 MB, measured; the tree is 4.5 MB and the
carried total must stay under 64 MiB; bitsandbytes' wheel is tagged manylinux_2_24)::

    pip download --only-binary=:all: --no-deps --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu_wheels \
        diffusers==0.42.1 bitsandbytes==0.50.2 pydantic==2.14.4 pydantic-core==2.50.5 \
        typing-inspection annotated-types pyyaml

then run, carrying ``.gpu_wheels``, with a timeout that leaves room for one rerun::

    pip install --no-index --no-deps .gpu_wheels/*.whl && python benchmarks/gpu_check.py

(pydantic 2.14.4 pins pydantic-core 2.50.5 and needs typing-extensions >= 4.16; diffusers 0.42.1
needs safetensors >= 0.8 and huggingface-hub >= 1.32: if the machine's are older, add those wheels
the same way.)

``--sections train enrich generate`` reruns only some parts. Rehearse with ``--tiny`` first.

``--record`` also writes each measured row whose options are a preset row's (the README's memory
table, ``core/models/registry.py``) into ``core/models/memory_measured.json``: that row then shows
the measured peak and speed next to its estimate, and says whether it fits the card. Tiny runs never
record. Copy the file back from the device machine and commit it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if ROOT.name == "flenwheel":
    sys.path.insert(0, str(ROOT.parent))
else:  # a copy of the working tree under another folder name: import it as flenwheel through a link
    _link = Path(tempfile.mkdtemp(prefix="flenwheel-pkg-")) / "flenwheel"
    _link.symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(_link.parent))

import enrich_throughput as enrich_bench  # noqa: E402
import generate_throughput as generate_bench  # noqa: E402
import gpu_train_memory as train_bench  # noqa: E402
import torch  # noqa: E402

GOALS = {"flux-1024": 10.0, "qwen-edit": 20.0, "enrich": 16.0}
#: the trainer's memory options appear as "fp8" (quantize: fp8) and "swap" (blocks_to_swap: 16, as
#: musubi-tuner's 24 GB Qwen-Image recipe; 2 on the tiny configs, all their blocks)
MEMORY_MODES = ("fp8 + grad ckpt", "bf16 + grad ckpt + swap", "fp8 + grad ckpt + swap")
TRAIN_MODES = {
    "flux": ("bf16", "nf4 + grad ckpt + adamw8bit", *MEMORY_MODES),
    "qwen-edit": ("bf16", "bf16 + grad ckpt", "nf4 + grad ckpt + adamw8bit", *MEMORY_MODES),
    "flux2-klein": ("bf16", "bf16 + grad ckpt", *MEMORY_MODES),
    "z-image": ("bf16", "bf16 + grad ckpt", *MEMORY_MODES),
}
#: inference memory options that need a GPU; fp8 storage and group offload also run on the CPU
CUDA_ONLY = ("nf4", "offload")
NO_OFFLOAD = "no offload option in the trainer: latents and embeddings are cached, then the encoders leave"
#: the registry family each stage of the table measures, and the in-process modes as load options
STAGE_FAMILY = {"train FLUX.1-dev": "flux", "train Qwen-Image-Edit-2509": "qwen-edit",
                "train FLUX.2 [klein] 4B": "flux2-klein", "train Z-Image (Base)": "z-image",
                "enrich (Qwen-Image-Edit-2509)": "qwen-edit", "generate (FLUX.1-dev)": "flux",
                "generate (Z-Image-Turbo)": "z-image"}
_PLAIN_LOAD = {"quantize": "none", "quantize_text_encoder": "none", "offload": "none", "vae_tiling": False}
LOAD_MODES = {"bf16": _PLAIN_LOAD, "nf4": {**_PLAIN_LOAD, "quantize": "nf4", "quantize_text_encoder": "nf4"},
              "offload": {**_PLAIN_LOAD, "offload": "model"}, "fp8": {**_PLAIN_LOAD, "quantize": "fp8"},
              "group": {**_PLAIN_LOAD, "offload": "group"},
              "fp8 + group": {**_PLAIN_LOAD, "quantize": "fp8", "offload": "group"}}


def _row(stage: str, case: str, mode: str, result: dict, goal: float | None = None,
         unit: str = "s/step") -> dict[str, Any]:
    row = {"stage": stage, "case": case, "mode": mode, "goal_gib": goal, "unit": unit, **result}
    peak = row.get("peak_gib")
    row["meets_goal"] = None if goal is None or peak is None else peak <= goal
    return row


def training_rows(tiny: bool, steps: int) -> list[dict[str, Any]]:
    device = torch.device("cpu" if tiny else "cuda")
    dtype = torch.float32 if tiny else torch.bfloat16
    rank = 4 if tiny else 16
    rows = []
    for side in (64, 128) if tiny else (512, 1024):
        spec = train_bench.flux_spec(tiny, side)
        goal = GOALS["flux-1024"] if side == (128 if tiny else 1024) else None
        for mode in TRAIN_MODES["flux"]:
            result = train_bench.measure_mode(spec, train_bench.MODES[mode], device, dtype, rank, steps)
            rows.append(_row("train FLUX.1-dev", f"{side} px, rank {rank}", mode, result, goal))
        rows.append(_row("train FLUX.1-dev", f"{side} px, rank {rank}", "offload", {"skipped": NO_OFFLOAD}))
    spec = train_bench.qwen_spec(tiny)
    case = "64 px target + source" if tiny else "1024 px target + 1024 px source"
    for mode in TRAIN_MODES["qwen-edit"]:
        result = train_bench.measure_mode(spec, train_bench.MODES[mode], device, dtype, rank, steps)
        rows.append(_row("train Qwen-Image-Edit-2509", f"{case}, rank {rank}", mode, result, GOALS["qwen-edit"]))
    rows.append(_row("train Qwen-Image-Edit-2509", f"{case}, rank {rank}", "offload", {"skipped": NO_OFFLOAD}))
    spec, side = train_bench.klein_spec(tiny), 64 if tiny else 1024
    for mode in TRAIN_MODES["flux2-klein"]:  # no goal was set for klein; 2511 trains as 2509 (same architecture)
        result = train_bench.measure_mode(spec, train_bench.MODES[mode], device, dtype, rank, steps)
        rows.append(_row("train FLUX.2 [klein] 4B", f"{side} px, rank {rank}", mode, result))
    spec, side = train_bench.z_image_spec(tiny), 256 if tiny else 1024  # tiny: a 32x32 latent
    for mode in TRAIN_MODES["z-image"]:  # no goal was set; Turbo takes the LoRA trained on Base
        result = train_bench.measure_mode(spec, train_bench.MODES[mode], device, dtype, rank, steps)
        rows.append(_row("train Z-Image (Base)", f"{side} px, rank {rank}", mode, result))
    return rows


def enrich_rows(tiny: bool, steps: int) -> list[dict[str, Any]]:
    size = 64 if tiny else 1024
    rows = enrich_bench.measure_full_size(tiny, list(enrich_bench.MODES), size, steps, edits=1)
    return [_row("enrich (Qwen-Image-Edit-2509)", f"{size}x{size}, {steps} steps, true CFG 4", row.pop("mode"), row,
                 GOALS["enrich"], "s/image") for row in rows]


#: the generation rows: (stage, registry family, guidance, modes); Z-Image-Turbo generates at its own
#: settings (no CFG), with the LoRA trained on Base. Z-Image's presets use fp8, not NF4.
GENERATION = (("generate (FLUX.1-dev)", "flux", 3.5, enrich_bench.MODES),
              ("generate (Z-Image-Turbo)", "z-image", 0.0, tuple(m for m in enrich_bench.MODES if m != "nf4")))


def _pipeline(kind: str, tiny: bool) -> Any:
    """The family's random full-size pipeline on the GPU, or its tiny model on the CPU."""
    if not tiny:
        return generate_bench.random_flux_pipeline() if kind == "flux" else generate_bench.random_z_image_pipeline()
    from diffusers import FluxPipeline, ZImagePipeline

    from flenwheel.core.testing import tiny as tiny_models

    folder = tiny_models.ensure(kind, Path(tempfile.gettempdir()) / "flenwheel-bench-models")
    pipe = (FluxPipeline if kind == "flux" else ZImagePipeline).from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _prepare(pipe: Any, mode: str, device: str) -> None:
    """NF4 (FLUX): every block Linear of the transformer and of T5 in 4 bits; offload: diffusers' model
    offload; fp8 and group: the loaders' own memory options (``apply_memory_options``)."""
    if mode in enrich_bench.LOADER_MODES:
        enrich_bench.apply_loader_mode(pipe, mode, device)
    elif mode == "nf4":
        for blocks in (pipe.transformer.transformer_blocks, pipe.transformer.single_transformer_blocks,
                       pipe.text_encoder_2.encoder.block):
            enrich_bench.quantize_nf4(blocks, device)
    elif mode == "offload":
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=device)


def _generate_row(stage: str, kind: str, guidance: float, mode: str, tiny: bool, steps: int) -> dict[str, Any]:
    from flenwheel.core.generate.generate import generate_one
    from flenwheel.core.models.pipelines import PipelineHandle

    device, size = ("cpu", 64) if tiny else ("cuda", 1024)
    case = f"{size}x{size}, {steps} steps, guidance {guidance:g}"
    if tiny and mode in CUDA_ONLY:
        return _row(stage, case, mode, {"skipped": "needs CUDA"}, unit="s/image")
    pipe = _pipeline(kind, tiny)
    _prepare(pipe, mode, device)
    handle = PipelineHandle(kind=kind, pipe=pipe, source=f"random-{mode}", dtype="bf16", device=device)
    generate_one(handle, generate_bench.PROMPT, 0, size, size, 2, guidance)
    if not tiny:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    generate_one(handle, generate_bench.PROMPT, 1, size, size, steps, guidance)
    if not tiny:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = None if tiny else torch.cuda.max_memory_allocated() / 2**30
    del handle, pipe
    gc.collect()
    if not tiny:
        torch.cuda.empty_cache()
    return _row(stage, case, mode, {"peak_gib": peak, "s_per_image": seconds, "s_per_step": seconds / steps},
                unit="s/image")


def generation_rows(tiny: bool, steps: int) -> list[dict[str, Any]]:
    return [_generate_row(stage, kind, guidance, mode, tiny, steps)
            for stage, kind, guidance, modes in GENERATION for mode in modes]


def preset_options(row: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(``load`` or ``train``, the preset options) a measured row stands for, or None when it stands for none."""
    if row.get("peak_gib") is None or row["stage"] not in STAGE_FAMILY:
        return None
    if row["stage"].startswith("train"):
        mode = train_bench.MODES.get(row["mode"])
        side = int(row["case"].split()[0]) if row["case"].split()[0].isdigit() else 1024
        rank = int(row["case"].rsplit("rank ", 1)[1])
        quantize = "nf4" if mode and mode["nf4"] else "fp8" if mode and mode.get("fp8") else "none"
        return None if mode is None else ("train", {
            "quantize": quantize, "optimizer": "adamw8bit" if mode["adam8"] else "adamw",
            "resolution": side, "lora_rank": rank, "gradient_checkpointing": mode["checkpointing"], "batch_size": 1,
            "blocks_to_swap": row.get("blocks_to_swap", mode.get("swap", 0))})
    return ("load", LOAD_MODES[row["mode"]]) if row["mode"] in LOAD_MODES else None


def record_figures(rows: list[dict[str, Any]], device: str, path: Path) -> int:
    """Write the rows that match preset options into ``path`` (replacing older figures of the same options)."""
    figures = json.loads(path.read_text(encoding="utf-8")).get("figures", []) if path.is_file() else []
    recorded = 0
    for row in rows:
        found = preset_options(row)
        if found is None:
            continue
        stage, options = found
        family = STAGE_FAMILY[row["stage"]]
        figures = [f for f in figures if (f["family"], f["stage"], f["options"]) != (family, stage, options)]
        figures.append({"family": family, "stage": stage, "options": options, "peak_gib": round(row["peak_gib"], 2),
                        "seconds": round(row.get("s_per_image", row.get("s_per_step")), 3), "unit": row["unit"],
                        "device": device, "case": row["case"]})
        recorded += 1
    path.write_text(json.dumps({"format": 1, "figures": figures}, indent=2) + "\n", encoding="utf-8")
    return recorded


def _cells(row: dict[str, Any]) -> list[str]:
    """Table cells; a row that did not run carries its reason in place of the figures."""
    if "skipped" in row or "error" in row:
        return [row["stage"], row["case"], row["mode"], row.get("skipped") or row["error"]]
    peak = "-" if row.get("peak_gib") is None else f"{row['peak_gib']:.2f}"
    seconds = row.get("s_per_image", row.get("s_per_step"))
    goal = "" if row["goal_gib"] is None else f"<= {row['goal_gib']:g} GiB"
    verdict = {True: "met", False: "missed", None: ""}[row["meets_goal"]]
    return [row["stage"], row["case"], row["mode"], peak, f"{seconds:.3f} {row['unit']}", goal, verdict]


def print_table(rows: list[dict[str, Any]], header: str) -> None:
    table = [["stage", "case", "mode", "peak GiB", "time", "goal", "verdict"]] + [_cells(row) for row in rows]
    widths = [max(len(cells[i]) for cells in table if len(cells) == 7) for i in range(7)]
    print(header)
    for cells in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny configs on the CPU (checks the code path)")
    parser.add_argument("--sections", nargs="+", choices=["train", "enrich", "generate"],
                        default=["train", "enrich", "generate"])
    parser.add_argument("--train-steps", type=int, default=None, help="timed training steps (default 2; tiny 1)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps per image (default 8; tiny 2)")
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else Path("gpu_check.json")
    parser.add_argument("--out", type=Path, default=default_out, help="where the JSON table goes")
    parser.add_argument("--record", nargs="?", type=Path, const=ROOT / "core" / "models" / "memory_measured.json",
                        help="also write the figures of preset rows next to the estimates (default file: "
                             "core/models/memory_measured.json); never with --tiny")
    args = parser.parse_args()
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; run with --tiny to check the code path on the CPU")
    train_steps = args.train_steps or (1 if args.tiny else 2)
    steps = args.steps or (2 if args.tiny else 8)
    device = "CPU (tiny configs, fp32; peak GiB is the process RSS for training)" if args.tiny else \
        f"{torch.cuda.get_device_name()} (bf16)"
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for section, measure in (("train", lambda: training_rows(args.tiny, train_steps)),
                             ("enrich", lambda: enrich_rows(args.tiny, steps)),
                             ("generate", lambda: generation_rows(args.tiny, steps))):
        if section in args.sections:
            rows.extend(measure())
            print(f"[gpu_check] {section} done after {time.perf_counter() - started:.0f} s", flush=True)
    if args.tiny:  # tiny configs say nothing about the real models' memory
        for row in rows:
            row["meets_goal"] = None
    report = {"device": device, "torch": torch.__version__, "tiny": args.tiny, "goals_gib": GOALS,
              "seconds": round(time.perf_counter() - started, 1), "rows": rows}
    weights = "tiny random configs (no verdicts)" if args.tiny else "random full-size weights, no download"
    print_table(rows, f"FLENwheel GPU check on {device}: {weights}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if args.record and not args.tiny:
        count = record_figures(rows, torch.cuda.get_device_name(), args.record)
        print(f"recorded {count} preset figures in {args.record}")


if __name__ == "__main__":
    main()
