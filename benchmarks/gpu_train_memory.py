"""Peak VRAM and s/step of LoRA training on the FULL-SIZE FLUX.1-dev and Qwen-Image-Edit transformers.

No download: the architectures are built from diffusers' defaults (FLUX: FluxTransformer2DModel with
guidance_embeds=True, 12B parameters; Qwen-Image: QwenImageTransformer2DModel, 20B) with random
weights, directly on the GPU in bf16 (``with torch.device("cuda")``), which takes seconds. Each
mode then trains rank-16 LoRA steps on the layers our trainers target, at 1024x1024 (4096 image
tokens; the Qwen edit adds the 4096 source tokens beside them), with cached text embeddings
(random tensors of the real shapes), as our trainers do once the encoders have left the GPU:

    bf16 | bf16 + gradient checkpointing | NF4 base + checkpointing | NF4 + checkpointing + 8-bit AdamW

Goals: FLUX at 1024 px <= 10 GB with NF4 + checkpointing + 8-bit AdamW; Qwen-Image-Edit <= 20 GB
without block swapping. ``benchmarks/gpu_check.py`` runs this beside the inference benchmarks.

    python benchmarks/gpu_train_memory.py              # on a CUDA GPU
    python benchmarks/gpu_train_memory.py --tiny       # the same code on tiny configs, on the CPU

On the CPU, memory is the process's peak RSS (it never goes down, so rows only show growth), and the
bitsandbytes modes report why they cannot run there.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flenwheel.core.models.device_memory import store_fp8  # noqa: E402
from flenwheel.core.models.registry import family  # noqa: E402
from flenwheel.trainers.block_swap import BlockSwap, transformer_blocks  # noqa: E402
from flenwheel.trainers.families.flux import FLUX_TARGETS  # noqa: E402
from flenwheel.trainers.families.flux2_klein import FLUX2_TARGETS  # noqa: E402
from flenwheel.trainers.families.qwen_edit import QWEN_EDIT_TARGETS  # noqa: E402
from flenwheel.trainers.families.z_image import Z_IMAGE_TARGETS  # noqa: E402
from flenwheel.trainers.lora_io import resolve_targets  # noqa: E402

MODES = {
    "bf16": {"checkpointing": False, "nf4": False, "adam8": False},
    "bf16 + grad ckpt": {"checkpointing": True, "nf4": False, "adam8": False},
    "nf4 + grad ckpt": {"checkpointing": True, "nf4": True, "adam8": False},
    "nf4 + grad ckpt + adamw8bit": {"checkpointing": True, "nf4": True, "adam8": True},
    # the trainer's memory options (quantize: fp8, blocks_to_swap: N), through the trainer's own code
    "fp8 + grad ckpt": {"checkpointing": True, "nf4": False, "adam8": False, "fp8": True},
    "bf16 + grad ckpt + swap": {"checkpointing": True, "nf4": False, "adam8": False, "swap": 16},
    "fp8 + grad ckpt + swap": {"checkpointing": True, "nf4": False, "adam8": False, "fp8": True, "swap": 16},
}


@dataclass
class Spec:
    name: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[torch.device, torch.dtype], dict]
    target_tokens: int
    targets: tuple[str, ...]
    containers: tuple[str, ...]
    goal_gib: float
    goal_mode: str | None
    #: the trainer's limit for blocks_to_swap (the registry's), which a swap mode never exceeds
    max_blocks_to_swap: int = 10**6
    #: the prediction of one step from the inputs, for a transformer not called with FLUX's keywords
    forward: Callable[[torch.nn.Module, dict], torch.Tensor] | None = None

    def predict(self, model: torch.nn.Module, inputs: dict) -> torch.Tensor:
        if self.forward is not None:
            return self.forward(model, inputs)
        return model(**inputs, return_dict=False)[0][:, : self.target_tokens]


def flux_spec(tiny: bool, side: int | None = None) -> Spec:
    """FLUX.1-dev at ``side`` px (default 1024; tiny: 256 tokens); one image token per 16x16 pixels."""
    from diffusers import FluxTransformer2DModel

    if tiny:
        config = dict(
            patch_size=1,
            in_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            axes_dims_rope=[4, 4, 8],
            guidance_embeds=True,
        )
        tokens, text, channels, joint, pooled = 256, 32, 16, 32, 32
    else:
        config = dict(guidance_embeds=True)
        tokens, text, channels, joint, pooled = 4096, 512, 64, 4096, 768
    if side is not None:
        tokens = (side // 16) ** 2
    def inputs(device, dtype):
        return {
            "hidden_states": torch.randn(1, tokens, channels, device=device, dtype=dtype),
            "encoder_hidden_states": torch.randn(1, text, joint, device=device, dtype=dtype),
            "pooled_projections": torch.randn(1, pooled, device=device, dtype=dtype),
            "timestep": torch.tensor([0.6], device=device, dtype=dtype),
            "guidance": torch.tensor([1.0], device=device, dtype=torch.float32),
            "img_ids": torch.zeros(tokens, 3, device=device, dtype=dtype),
            "txt_ids": torch.zeros(text, 3, device=device, dtype=dtype),
        }

    return Spec(
        "FLUX.1-dev transformer",
        lambda: FluxTransformer2DModel(**config),
        inputs,
        tokens,
        FLUX_TARGETS,
        ("transformer_blocks", "single_transformer_blocks"),
        10.0,
        "nf4 + grad ckpt + adamw8bit",
    )


def klein_spec(tiny: bool) -> Spec:
    """FLUX.2 [klein] 4B at 1024 px (tiny: 256 tokens): 5 double + 20 single blocks, 3.9 B parameters,
    Qwen3 text features of three layers stacked (7680 wide), 4-axis positions, no guidance input."""
    from diffusers import Flux2Transformer2DModel

    if tiny:
        config = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                      num_attention_heads=2, joint_attention_dim=48, timestep_guidance_channels=32,
                      axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False)
        tokens, text, channels, joint = 256, 32, 16, 48
    else:
        config = dict(patch_size=1, in_channels=128, num_layers=5, num_single_layers=20, attention_head_dim=128,
                      num_attention_heads=24, joint_attention_dim=7680, timestep_guidance_channels=256,
                      mlp_ratio=3.0, axes_dims_rope=(32, 32, 32, 32), guidance_embeds=False)
        tokens, text, channels, joint = 4096, 512, 128, 7680

    def inputs(device, dtype):
        return {
            "hidden_states": torch.randn(1, tokens, channels, device=device, dtype=dtype),
            "encoder_hidden_states": torch.randn(1, text, joint, device=device, dtype=dtype),
            "timestep": torch.tensor([0.6], device=device, dtype=dtype),
            "img_ids": torch.zeros(tokens, 4, device=device, dtype=dtype),
            "txt_ids": torch.zeros(text, 4, device=device, dtype=dtype),
        }

    return Spec("FLUX.2 [klein] 4B transformer", lambda: Flux2Transformer2DModel(**config), inputs, tokens,
                FLUX2_TARGETS, ("transformer_blocks", "single_transformer_blocks"), 10.0, None,
                family("flux2-klein").max_blocks_to_swap)


def z_image_spec(tiny: bool) -> Spec:
    """Z-Image (Base, 6.15 B) at 1024 px (tiny: 256 tokens): 30 main + 2 noise-refiner + 2 context-refiner
    blocks, Qwen3-4B text features (2560 wide); called as ``ZImageAdapter.loss`` calls it, one
    ``(channels, 1, height, width)`` latent and one caption tensor per image, time ``1 - sigma``."""
    from diffusers import ZImageTransformer2DModel

    if tiny:
        config = dict(in_channels=16, dim=96, n_layers=2, n_refiner_layers=1, n_heads=6, n_kv_heads=6,
                      cap_feat_dim=32, axes_dims=[4, 6, 6])
        side, text, joint = 32, 32, 32
    else:
        config = {}  # diffusers' defaults are the released model's
        side, text, joint = 128, 512, 2560

    def inputs(device, dtype):
        return {"x": [torch.randn(16, 1, side, side, device=device, dtype=dtype)],
                "t": torch.tensor([0.4], device=device, dtype=dtype),
                "cap_feats": [torch.randn(text, joint, device=device, dtype=dtype)]}

    def forward(model, inputs):
        return torch.stack(list(model(**inputs, return_dict=False)[0])).squeeze(2)

    return Spec("Z-Image transformer", lambda: ZImageTransformer2DModel(**config), inputs, (side // 2) ** 2,
                Z_IMAGE_TARGETS, ("noise_refiner", "context_refiner", "layers"), 10.0, None,
                family("z-image").max_blocks_to_swap, forward)


def qwen_spec(tiny: bool) -> Spec:
    from diffusers import QwenImageTransformer2DModel

    if tiny:
        config = dict(
            patch_size=2,
            in_channels=16,
            out_channels=4,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=3,
            joint_attention_dim=16,
            axes_dims_rope=(8, 4, 4),
        )
        side, text, channels, joint = 8, 40, 16, 16
    else:
        config = {}
        side, text, channels, joint = 64, 300, 64, 3584

    def inputs(device, dtype):
        return {
            "hidden_states": torch.randn(1, 2 * side * side, channels, device=device, dtype=dtype),
            "encoder_hidden_states": torch.randn(1, text, joint, device=device, dtype=dtype),
            "timestep": torch.tensor([0.6], device=device, dtype=dtype),
            "img_shapes": [[(1, side, side), (1, side, side)]],
        }

    return Spec(
        "Qwen-Image-Edit transformer",
        lambda: QwenImageTransformer2DModel(**config),
        inputs,
        side * side,
        QWEN_EDIT_TARGETS,
        ("transformer_blocks",),
        20.0,
        None,
    )


def quantize_nf4(model: torch.nn.Module, containers: tuple[str, ...], device: torch.device) -> None:
    """Swap the block Linear layers for bitsandbytes NF4 layers, one at a time (what QLoRA loads)."""
    import bitsandbytes as bnb

    for name, module in list(model.named_modules()):
        if name.split(".")[0] not in containers:
            continue
        for child_name, child in list(module.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            layer = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=torch.bfloat16,
                quant_type="nf4",
                device="meta",
            )
            layer.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4")
            if child.bias is not None:
                layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, child_name, layer.to(device))
            del child
    gc.collect()


def memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource  # POSIX only; the CPU path is the --tiny check

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_mode(spec: Spec, mode: dict, device: torch.device, dtype: torch.dtype, rank: int,
                 steps: int) -> dict:
    """One mode: billions of parameters, peak GiB and s/step, or the reason it could not run."""
    from peft import LoraConfig

    model = None
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        swapped = mode.get("swap", 0)
        try:  # built on the GPU (fast); fp8 and swapped weights leave it before the peak is reset below
            with torch.device(device):
                model = spec.build()
        finally:
            torch.set_default_dtype(previous)
        model.requires_grad_(False)
        params = sum(p.numel() for p in model.parameters()) / 1e9
        targets = resolve_targets(model, list(spec.targets), spec.containers, spec.name)
        if mode["nf4"]:
            quantize_nf4(model, spec.containers, device)
        model.add_adapter(
            LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets)
        )
        trainable = [p for p in model.parameters() if p.requires_grad]
        for p in trainable:
            p.data = p.data.float()
        if mode["checkpointing"]:
            model.enable_gradient_checkpointing()
        if mode.get("fp8"):
            store_fp8(model, dtype)
        if swapped:
            blocks = transformer_blocks(model, spec.containers)
            BlockSwap(blocks, min(swapped, len(blocks), spec.max_blocks_to_swap), device).install(model)
        if mode["adam8"]:
            import bitsandbytes as bnb

            optimizer = bnb.optim.AdamW8bit(trainable, lr=1e-4)
        else:
            optimizer = torch.optim.AdamW(trainable, lr=1e-4)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        inputs = spec.inputs(device, dtype)
        target = None
        times = []
        for _ in range(steps + 1):
            started = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                prediction = spec.predict(model, inputs)
            if target is None:  # the shape of the model's prediction, made once
                target = torch.randn(prediction.shape, device=device, dtype=torch.float32)
            loss = F.mse_loss(prediction.float(), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        per_step = sum(times[1:]) / steps
        return {"params_b": params, "peak_gib": memory_mib(device) / 1024, "s_per_step": per_step}
    except torch.OutOfMemoryError:
        return {"error": f"out of memory (peak {memory_mib(device) / 1024:.1f} GiB)"}
    except Exception as exc:  # a mode that cannot run here (bitsandbytes on a CPU) is reported, not fatal
        return {"error": f"n/a: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"}
    finally:
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def run_mode(spec: Spec, mode: dict, device: torch.device, dtype: torch.dtype, rank: int,
             steps: int) -> tuple[str, float | None]:
    """One row of the table, and the peak in GiB (None when the mode could not run)."""
    result = measure_mode(spec, mode, device, dtype, rank, steps)
    if "error" in result:
        return result["error"], None
    return (f"{result['params_b']:7.2f}B params  peak {result['peak_gib']:7.2f} GiB  "
            f"{result['s_per_step']:8.3f} s/it"), result["peak_gib"]


def goal_line(spec: Spec, peaks: dict[str, float | None], verdict: bool = True) -> str:
    """The issue's goal for this model: a fixed mode (FLUX) or the best mode (Qwen, no block swapping)."""
    if spec.goal_mode is None:
        peak, where = min((p for p in peaks.values() if p is not None), default=None), "best mode"
    else:
        peak, where = peaks.get(spec.goal_mode), spec.goal_mode
    if not verdict:
        return f"goal <= {spec.goal_gib:g} GiB ({where}): no verdict on tiny configs"
    met = peak is not None and peak <= spec.goal_gib
    shown = f"{peak:.2f} GiB" if peak is not None else "not measured"
    return f"goal <= {spec.goal_gib:g} GiB ({where}): {'met' if met else 'missed'} ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny configs on the CPU (checks the code path)")
    parser.add_argument("--model", choices=["flux", "qwen-edit", "z-image", "both"], default="both",
                        help="both: FLUX.1-dev and Qwen-Image-Edit")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--modes", nargs="*", choices=list(MODES), default=list(MODES))
    args = parser.parse_args()
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; run with --tiny to check the code path on the CPU")
    device = torch.device("cpu" if args.tiny else "cuda")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    specs = [s for key, s in (("flux", flux_spec), ("qwen-edit", qwen_spec), ("z-image", z_image_spec))
             if args.model == key or (args.model == "both" and key != "z-image")]
    label = (
        "tiny configs on CPU in fp32 (peak = process RSS)"
        if args.tiny
        else f"{torch.cuda.get_device_name()}, bf16"
    )
    size = "64 px (tiny)" if args.tiny else "1024 px (4096 image tokens)"
    print(f"LoRA rank {args.rank}, {size}, batch 1, cached text embeddings; {label}")
    for make in specs:
        spec = make(args.tiny)
        print(f"\n{spec.name}")
        peaks = {}
        for name in args.modes:
            row, peaks[name] = run_mode(spec, MODES[name], device, dtype, args.rank, args.steps)
            print(f"  {name:30s} {row}", flush=True)
        print(f"  {goal_line(spec, peaks, verdict=not args.tiny)}")


if __name__ == "__main__":
    main()
