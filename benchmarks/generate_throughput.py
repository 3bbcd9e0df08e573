"""Step-1.5 throughput: FLENwheel's generation engine against diffusers' FluxPipeline used the plain way.

For each memory mode it loads the model twice, once the plain diffusers way (``from_pretrained``,
``load_lora_weights``, ``pipe(...)``) and once through FLENwheel (``load_flux``, a handle with the
LoRA, ``generate_one``, and ``generate_one`` plus the dataset commit ``run_generation`` makes per
image: PNG, record and manifest), renders
the same prompt and seeds with both, and prints seconds per image, peak memory and our overhead.
The goal: our engine costs at most 5% more than the plain call.

Tiny mode (default, any CPU): the tiny random FLUX at 64x64, 4 steps. Its images take milliseconds,
so PNG writing and bookkeeping dominate and the overhead figure means little; it checks the script.

``--full-size`` (a GPU with 40+ GB): the FLUX.1-dev architecture (12B transformer, T5-XXL, CLIP-L,
16-channel VAE) with random weights, built once in --work-dir (about 34 GB on disk), with a random
rank-16 LoRA on every attention projection, at 1024x1024 and 28 steps, in the modes bf16, nf4
(transformer and T5 in 4-bit) and offload (model CPU offload).

    python benchmarks/generate_throughput.py [--images 3] [--json]
    python benchmarks/generate_throughput.py --full-size [--modes bf16,nf4,offload] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from flenwheel.core.data.dataset import DuplicateImageError
from flenwheel.core.data.project import Project
from flenwheel.core.generate.generate import generate_one
from flenwheel.core.generate.prompt_sets import RenderSettings
from flenwheel.core.models.flux_single_file import load_flux
from flenwheel.core.models.loras import LoraSpec
from flenwheel.core.models.pipelines import LoadOptions

PROMPT = "front view portrait photo of ohwx_char person, facing the camera, soft studio light"
FULL_MODES = {
    "bf16": {"dtype": "bf16"},
    "nf4": {"dtype": "bf16", "quantize": "nf4", "quantize_text_encoder": "nf4"},
    "offload": {"dtype": "bf16", "offload": "model"},
}


def random_lora(transformer: Any, path: Path, rank: int) -> Path:
    """A LoRA on every attention projection, in the trainer's key layout, with small random weights."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(
            ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0")
        ):
            down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=generator) * 0.01
            tensors[f"transformer.{name}.lora_A.weight"] = down.to(torch.bfloat16)
            tensors[f"transformer.{name}.lora_B.weight"] = up.to(torch.bfloat16)
    save_file(tensors, str(path))
    return path


def flux_vae() -> Any:
    """FLUX.1's 16-channel VAE architecture (Z-Image uses the same), built on the current default device."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=16,
        sample_size=1024,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def random_z_image_pipeline() -> Any:
    """Z-Image's architecture (6.15 B transformer, Qwen3-4B text encoder, FLUX VAE) with random bf16 weights
    on the GPU; the tokenizer is the tiny model's, made locally (its ids fall inside Qwen3's vocabulary)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

    from flenwheel.core.testing import tiny

    folder = tiny.ensure("z-image", Path(tempfile.mkdtemp()))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            transformer = ZImageTransformer2DModel()  # diffusers' defaults are the released model's
            text_encoder = Qwen3Model(Qwen3Config(
                vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                rope_theta=1000000.0, tie_word_embeddings=True))
            vae = flux_vae()
    finally:
        torch.set_default_dtype(previous)
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
                          vae=vae, text_encoder=text_encoder, transformer=transformer,
                          tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_flux_pipeline() -> Any:
    """FLUX.1-dev's architecture with random bf16 weights, initialised directly on the GPU (seconds)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from flenwheel.core.testing import tiny

    tokenizers = tiny.build_flux(Path(tempfile.mkdtemp()) / "tiny")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            transformer = FluxTransformer2DModel(guidance_embeds=True)
            t5 = T5EncoderModel(
                T5Config(
                    vocab_size=32128,
                    d_model=4096,
                    d_kv=64,
                    d_ff=10240,
                    num_layers=24,
                    num_heads=64,
                    feed_forward_proj="gated-gelu",
                    is_encoder_decoder=False,
                )
            )
            clip = CLIPTextModel(
                CLIPTextConfig(
                    vocab_size=49408,
                    hidden_size=768,
                    intermediate_size=3072,
                    num_hidden_layers=12,
                    num_attention_heads=12,
                    projection_dim=768,
                    max_position_embeddings=77,
                    bos_token_id=0,
                    eos_token_id=1,
                    pad_token_id=1,
                )
            )
            vae = flux_vae()
    finally:
        torch.set_default_dtype(previous)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipe = FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=clip,
        text_encoder_2=t5,
        transformer=transformer,
        tokenizer=AutoTokenizer.from_pretrained(tokenizers / "tokenizer"),
        tokenizer_2=AutoTokenizer.from_pretrained(tokenizers / "tokenizer_2"),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_full_size(folder: Path, rank: int) -> Path:
    """The random FLUX.1-dev saved once in ``folder`` (about 34 GB), with a random rank-``rank`` LoRA."""
    if (folder / "model_index.json").is_file() and (folder / "lora.safetensors").is_file():
        return folder
    pipe = random_flux_pipeline()
    pipe.save_pretrained(folder)
    random_lora(pipe.transformer, folder / "lora.safetensors", rank)
    del pipe
    free()
    return folder


def build_tiny(folder: Path) -> Path:
    from diffusers import FluxTransformer2DModel

    from flenwheel.core.testing import tiny

    tiny.build("flux", folder)
    random_lora(
        FluxTransformer2DModel.from_pretrained(folder / "transformer"), folder / "lora.safetensors", 4
    )
    return folder


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def plain_pipeline(folder: Path, mode: dict[str, Any], device: str) -> Any:
    """diffusers as its documentation shows it: from_pretrained, optional bitsandbytes, offload, LoRA."""
    from diffusers import FluxPipeline, PipelineQuantizationConfig

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[mode["dtype"]]
    extra = {}
    if mode.get("quantize"):
        extra["quantization_config"] = PipelineQuantizationConfig(
            quant_backend="bitsandbytes_4bit",
            components_to_quantize=["transformer", "text_encoder_2"],
            quant_kwargs={
                "load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_compute_dtype": dtype,
            },
        )
    pipe = FluxPipeline.from_pretrained(folder, torch_dtype=dtype, **extra)
    if mode.get("offload"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.load_lora_weights(folder / "lora.safetensors", adapter_name="char")
    pipe.set_adapters(["char"], adapter_weights=[1.0])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def timed(fn: Any, seeds: list[int]) -> list[float]:
    times = []
    for seed in seeds:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(seed)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def measure(
    folder: Path,
    mode_name: str,
    mode: dict[str, Any],
    settings: RenderSettings,
    images: int,
    warmup: int,
    device: str,
    interleave: bool,
) -> dict[str, Any]:
    """Time both paths. Interleaved (both loaded, calls alternating) when memory allows, so that a busy
    machine slows both alike; otherwise one after the other, freeing memory in between."""
    seeds = list(range(warmup + images))
    free()
    pipe = plain_pipeline(folder, mode, device)

    def plain_call(seed: int) -> None:
        pipe(
            PROMPT,
            height=settings.height,
            width=settings.width,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
        )

    plain = [] if interleave else timed(plain_call, seeds)[warmup:]
    plain_peak = peak_gib()
    if not interleave:
        del pipe
        free()
    handle = load_flux(str(folder), options=LoadOptions(device=device, **mode))
    handle = handle.with_loras([LoraSpec(str(folder / "lora.safetensors"), 1.0)])

    def engine_call(seed: int) -> None:
        generate_one(handle, PROMPT, seed, settings.width, settings.height, settings.steps, settings.guidance)

    duplicates = []
    with tempfile.TemporaryDirectory() as root:
        dataset = Project.init(Path(root) / "project", name="benchmark").create_dataset("synthetic")

        def saved_call(seed: int) -> None:
            """What run_generation does per image: render, then commit PNG, record and manifest."""
            result = generate_one(
                handle, PROMPT, seed, settings.width, settings.height, settings.steps, settings.guidance
            )
            try:
                dataset.add_image(result.image, stem=f"seed{seed}", **result.fields)
            except DuplicateImageError:
                duplicates.append(seed)

        calls = [plain_call, engine_call, saved_call] if interleave else [engine_call, saved_call]
        rounds = [[timed(call, [seed])[0] for call in calls] for seed in seeds][warmup:]
    columns = list(zip(*rounds, strict=True))
    if interleave:
        plain = list(columns.pop(0))
    engine, saved = columns
    engine_peak = peak_gib()
    plain_median, engine_median, saved_median = (statistics.median(t) for t in (plain, engine, saved))

    def overhead(times: tuple[float, ...]) -> float:
        """Interleaved: the median of per-round ratios, robust to a machine whose load drifts."""
        if interleave:
            return 100 * (statistics.median(t / p for t, p in zip(times, plain, strict=True)) - 1)
        return 100 * (statistics.median(times) / plain_median - 1)

    return {
        "mode": mode_name,
        "plain_s_per_image": plain_median,
        "engine_s_per_image": engine_median,
        "saved_s_per_image": saved_median,
        "engine_overhead_pct": overhead(engine),
        "saved_overhead_pct": overhead(saved),
        "plain_peak_gib": plain_peak,
        "engine_peak_gib": engine_peak,
        "duplicates": len(duplicates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--full-size", action="store_true", help="FLUX.1-dev architecture, random weights (GPU)"
    )
    parser.add_argument("--modes", help="comma list of bf16, nf4, offload (full size; default all)")
    parser.add_argument("--images", type=int, default=3, help="timed images per path and mode")
    parser.add_argument("--warmup", type=int, default=1, help="untimed images first")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "flenwheel-flux-random",
        help="where the full-size random model is built and kept",
    )
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.full_size:
        if not torch.cuda.is_available():
            parser.error(
                "--full-size needs a CUDA GPU (about 40 GB for bf16); run without it for the tiny check"
            )
        folder, device = build_full_size(args.work_dir, args.lora_rank), "cuda"
        settings = RenderSettings(width=1024, height=1024, steps=28, guidance=3.5)
        modes = {name: FULL_MODES[name] for name in (args.modes.split(",") if args.modes else FULL_MODES)}
    else:
        scratch = Path(tempfile.mkdtemp(prefix="flenwheel-bench-"))
        folder, device = build_tiny(scratch / "tiny-flux"), "cuda" if torch.cuda.is_available() else "cpu"
        settings = RenderSettings(width=64, height=64, steps=4, guidance=3.5)
        modes = {"tiny-fp32": {"dtype": "fp32"}}
    results = [
        measure(folder, name, mode, settings, args.images, args.warmup, device, not args.full_size)
        for name, mode in modes.items()
    ]
    if not args.full_size:
        shutil.rmtree(folder.parent, ignore_errors=True)
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    if args.json:
        print(
            json.dumps(
                {"device": device_name, "width": settings.width, "steps": settings.steps, "results": results},
                indent=2,
            )
        )
        return
    memory = "peak VRAM GiB" if torch.cuda.is_available() else "process peak RSS GiB"
    print(f"{device_name}, {settings.width}x{settings.height}, {settings.steps} steps, LoRA on; {memory}")
    print(
        f"{'mode':10s} {'plain s/img':>11s} {'engine s/img':>12s} {'+save s/img':>11s} {'overhead':>9s} "
        f"{'+save ovh':>9s} {'plain mem':>9s} {'engine mem':>10s}"
    )
    for r in results:
        print(
            f"{r['mode']:10s} {r['plain_s_per_image']:11.3f} {r['engine_s_per_image']:12.3f} "
            f"{r['saved_s_per_image']:11.3f} {r['engine_overhead_pct']:8.1f}% "
            f"{r['saved_overhead_pct']:8.1f}% "
            f"{r['plain_peak_gib']:9.2f} {r['engine_peak_gib']:10.2f}"
            + (f"  ({r['duplicates']} duplicate images)" if r["duplicates"] else "")
        )


if __name__ == "__main__":
    main()
