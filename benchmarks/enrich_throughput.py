"""Enrichment throughput: seconds per edited image and peak memory.

Default mode: the whole enrichment engine (plan, edit, save, records) on the tiny random-weight
Qwen-Image-Edit-2509, on a temporary project. It measures the engine's own overhead; the images
are noise.

``--full-size``: the real Qwen-Image-Edit-2509 architecture with random weights (diffusers'
QwenImageTransformer2DModel and AutoencoderKLQwenImage defaults, the Qwen2.5-VL-7B text encoder
config), built directly on the GPU so nothing is downloaded; its outputs are meaningless, only time
and memory count. For each memory option (bf16, NF4, CPU offload) it prints peak VRAM and seconds
per edited image, against the seed's ~16 GB budget.
NF4 swaps every linear layer of the transformer blocks and of the text encoder's language model
for a bitsandbytes 4-bit layer, as diffusers/transformers quantisation at load time does.
``--full-size --tiny`` runs the same code path with tiny configs on the CPU (a smoke test; modes
that need CUDA are reported as skipped).

    python benchmarks/enrich_throughput.py --sources 5 --per-source 4
    python benchmarks/enrich_throughput.py --full-size --size 1024 --steps 20      # NVIDIA GPU
    python benchmarks/enrich_throughput.py --full-size --tiny                      # CPU smoke test
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

BUDGET_GB = 16.0
MODES = ("bf16", "nf4", "offload", "fp8", "group", "fp8 + group")
#: modes that are the loaders' memory options, applied by the loaders' own code
LOADER_MODES = {"fp8": {"quantize": "fp8"}, "group": {"offload": "group"},
                "fp8 + group": {"quantize": "fp8", "offload": "group"}}

FULL = {
    "transformer": {},
    "vae": {},
    "text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28,
             "num_key_value_heads": 4, "rope_theta": 1000000.0,
             "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"}},
    "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
               "out_hidden_size": 3584,
               "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112},
    "processor": {"min_pixels": 3136, "max_pixels": 12845056},
    "vocab_size": 152064,
}
TINY = {
    "transformer": {"patch_size": 2, "in_channels": 16, "out_channels": 4, "num_layers": 2,
                    "attention_head_dim": 16,
                    "num_attention_heads": 3, "joint_attention_dim": 16, "axes_dims_rope": (8, 4, 4)},
    "vae": {"base_dim": 24, "z_dim": 4, "dim_mult": [1, 2, 4], "num_res_blocks": 1,
            "temperal_downsample": [False, True],
            "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4},
    "text": {"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 2, "rope_theta": 1000000.0,
             "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}},
    "vision": {"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
               "fullatt_block_indexes": [1]},
    "processor": {"min_pixels": 784, "max_pixels": 12544},
    "vocab_size": None,
}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def noise(seed: int, size: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def bench_engine(args: argparse.Namespace) -> None:
    """The enrichment engine end to end on the tiny model."""
    import torch

    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.data.project import Project
    from flenwheel.core.enrich.enrich import EnrichSettings, enrich
    from flenwheel.core.models.pipelines import LoadOptions
    from flenwheel.core.models.qwen_edit_loader import load_qwen_edit
    from flenwheel.core.testing import tiny

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny.ensure("qwen-edit", args.cache or Path(tmp) / "models")
        project = Project.init(Path(tmp) / "project", name="benchmark")
        add_sources(project, images=[(f"src{i}", noise(i, args.size)) for i in range(args.sources)])
        device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
        handle = load_qwen_edit(str(model), options=LoadOptions(dtype="fp32" if device == "cpu" else "bf16",
                                                                device=device))
        settings = EnrichSettings(per_source=args.per_source, steps=args.steps, width=args.size,
                                  height=args.size,
                                  vae_pixels=args.size * args.size, condition_pixels=args.size * args.size)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = enrich(project, handle, settings)
        wall = time.perf_counter() - start
        seconds = [record.model_extra["seconds"] for record in result.dataset.records]
    print(f"tiny Qwen-Image-Edit-2509 on {device} ({args.threads} thread(s)), {args.size}x{args.size}, "
          f"{args.steps} steps, true_cfg 4")
    print(f"  edits            {len(seconds)} ({args.sources} sources x {args.per_source})")
    print(f"  s/edit (model)   median {statistics.median(seconds):.3f}, mean {statistics.mean(seconds):.3f}")
    print(f"  s/edit (engine)  {wall / len(seconds):.3f} (includes planning, PNG + metadata writes)")
    print(f"  peak RSS         {peak_rss_gb():.2f} GB")
    if device == "cuda":
        print(f"  peak VRAM        {torch.cuda.max_memory_allocated() / 1024**3:.2f} GB")


def _processor(tokenizer: Any, pixels: dict[str, int]) -> Any:
    from transformers import Qwen2VLImageProcessor

    from flenwheel.core.models.qwen_processor import ImageOnlyQwen2VLProcessor

    image_processor = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, **pixels)
    return ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_random_pipeline(configs: dict[str, Any], device: str, dtype: Any) -> Any:
    """A QwenImageEditPlusPipeline of the given sizes with random weights, initialised on ``device``."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer

    from flenwheel.core.testing import tiny

    folder = tiny.ensure("qwen-edit", Path(tempfile.gettempdir()) / "flenwheel-bench-models")
    tokenizer = Qwen2Tokenizer.from_pretrained(folder / "tokenizer")
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tiny.QWEN_SPECIAL_TOKENS}
    vocab = configs["vocab_size"] or len(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={**configs["text"], "vocab_size": vocab, "bos_token_id": ids["<|endoftext|>"],
                     "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]},
        vision_config=configs["vision"], vocab_size=vocab, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], vision_token_id=ids["<|image_pad|>"],
    )
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = QwenImageTransformer2DModel(**configs["transformer"])
            vae = AutoencoderKLQwenImage(**configs["vae"])
            text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256, base_shift=1.0986, max_image_seq_len=8192, max_shift=1.0986, shift=1.0,
        shift_terminal=0.02, time_shift_type="exponential", use_dynamic_shifting=True)
    processor = _processor(tokenizer, configs["processor"])
    pipe = QwenImageEditPlusPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                                     tokenizer=tokenizer, processor=processor, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def quantize_nf4(module: Any, device: str) -> None:
    """Replace every nn.Linear under ``module`` by a bitsandbytes NF4 layer (weights quantised on the GPU)."""
    import bitsandbytes as bnb
    import torch

    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=torch.bfloat16, quant_type="nf4", device="meta")
            layer.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4")
            if child.bias is not None:
                layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, name, layer.to(device))
            del child
        else:
            quantize_nf4(child, device)


def apply_loader_mode(pipe: Any, mode: str, device: str) -> None:
    """fp8 storage and group offload exactly as a loader applies them (on the CPU first, like a load)."""
    from flenwheel.core.models.pipelines import LoadOptions, apply_memory_options

    dtype = "bf16" if str(device).startswith("cuda") else "fp32"
    pipe.to("cpu")
    apply_memory_options(pipe, LoadOptions(dtype=dtype, device=device, **LOADER_MODES[mode]), device)


def prepare_mode(pipe: Any, mode: str, device: str) -> None:
    if mode in LOADER_MODES:
        apply_loader_mode(pipe, mode, device)
    elif mode == "nf4":
        quantize_nf4(pipe.transformer.transformer_blocks, device)
        language = getattr(pipe.text_encoder.model, "language_model", pipe.text_encoder.model)
        quantize_nf4(language.layers, device)
    elif mode == "offload":
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=device)


def measure_full_size(tiny: bool, modes: list[str], size: int, steps: int, edits: int) -> list[dict[str, Any]]:
    """Peak VRAM (GiB, None on the CPU) and s/image per memory option; modes needing CUDA are skipped."""
    import torch

    from flenwheel.core.enrich.enrich import EnrichSettings, edit_once
    from flenwheel.core.models.pipelines import PipelineHandle

    device = "cpu" if tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--full-size needs an NVIDIA GPU; add --tiny to run the same code path on the CPU")
    configs = TINY if tiny else FULL
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    settings = EnrichSettings(steps=steps, width=size, height=size, true_cfg=4.0,
                              vae_pixels=size * size if tiny else None,
                              condition_pixels=56 * 56 if tiny else None)
    rows = []
    for mode in modes:
        if device == "cpu" and mode not in ("bf16", *LOADER_MODES):
            rows.append({"mode": mode, "skipped": "needs CUDA"})
            continue
        pipe = build_random_pipeline(configs, device, dtype)
        prepare_mode(pipe, mode, device)
        handle = PipelineHandle(kind="qwen-edit", pipe=pipe, source=f"random-{mode}", dtype="bf16",
                                device=device)
        source = noise(0, size)
        warm_up = EnrichSettings(steps=2, width=size, height=size, vae_pixels=settings.vae_pixels,
                                 condition_pixels=settings.condition_pixels)
        edit_once(handle, source, "warm-up", 0, warm_up)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for index in range(edits):
            start = time.perf_counter()
            edit_once(handle, source, "Replace the background with a forest.", index, settings)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        peak = torch.cuda.max_memory_allocated() / 1024**3 if device == "cuda" else None
        rows.append({"mode": mode, "peak_gib": peak, "s_per_image": seconds, "s_per_step": seconds / steps})
        del handle, pipe
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def bench_full_size(args: argparse.Namespace) -> None:
    """Peak VRAM and s/image per memory option on the real architecture (random weights)."""
    import torch

    label = "tiny configs on CPU (smoke test)" if args.tiny else torch.cuda.get_device_name()
    print(f"Qwen-Image-Edit-2509 architecture, random weights: {label}; {args.size}x{args.size}, "
          f"{args.steps} steps, true_cfg 4 (two transformer passes per step), {args.edits} edit(s) per mode")
    print(f"{'mode':10s} {'peak VRAM GB':>13s} {'s/image':>9s} {'s/step':>8s}  fits {BUDGET_GB:.0f} GB")
    for row in measure_full_size(args.tiny, args.modes, args.size, args.steps, args.edits):
        if "skipped" in row:
            print(f"{row['mode']:10s} {'skipped: ' + row['skipped']:>33s}")
            continue
        peak = row["peak_gib"]
        memory = f"{peak:13.2f}" if peak is not None else f"{'-':>13s}"
        fits = "-" if peak is None else "yes" if peak <= BUDGET_GB else "no"
        print(f"{row['mode']:10s} {memory} {row['s_per_image']:9.2f} {row['s_per_step']:8.3f}  {fits}")
    print(f"peak RSS {peak_rss_gb():.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="Real architecture, random weights (GPU).")
    parser.add_argument("--tiny", action="store_true", help="With --full-size: tiny configs on the CPU.")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="Memory options to measure.")
    parser.add_argument("--size", type=int, default=None, help="Image side (tiny: 64, full size: 1024).")
    parser.add_argument("--steps", type=int, default=None, help="Denoising steps (tiny: 2, full size: 20).")
    parser.add_argument("--edits", type=int, default=2, help="Timed edits per mode (full size).")
    parser.add_argument("--sources", type=int, default=5, help="Sources in the tiny engine run.")
    parser.add_argument("--per-source", type=int, default=4, help="Edits per source in the tiny engine run.")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the tiny engine run.")
    parser.add_argument("--cpu", action="store_true", help="Run the tiny engine on the CPU even with a GPU.")
    parser.add_argument("--cache", type=Path, help="Folder for the tiny model (default: a temporary one).")
    args = parser.parse_args()
    large = args.full_size and not args.tiny
    args.size = args.size or (1024 if large else 64)
    args.steps = args.steps or (20 if large else 2)
    (bench_full_size if args.full_size else bench_engine)(args)


if __name__ == "__main__":
    main()
