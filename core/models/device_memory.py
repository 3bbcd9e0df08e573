"""How a model uses device memory: fp8 weight storage, block-level offload, and giving memory back.

fp8 storage keeps each layer's weights in float8 e4m3fn (half of bf16) and widens a layer to the
compute dtype only while it runs (diffusers' layerwise casting), so images and losses stay close
to bf16's while the transformer needs half the memory; NF4 costs more quality for its quarter.
Group offload keeps the pipeline's blocks in CPU memory and brings one block at a time to the GPU,
overlapping the copy of the next block with the work of this one on a CUDA stream.
"""

from __future__ import annotations

import gc
from typing import Any

from ..data.errors import ModelLoadError

#: The float8 layout every fp8 option stores: 4 exponent bits, 3 mantissa bits, no infinities.
FP8_STORAGE = "float8_e4m3fn"
#: Half the distance between 1 and the next e4m3 number: the largest relative error of one stored weight.
FP8_UNIT_ROUNDOFF = 2.0 ** -4


def free_memory() -> None:
    """Collect dropped models and return the GPU's cached blocks, so the next load finds them free."""
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fp8_dtype() -> Any:
    """torch's float8 e4m3fn dtype."""
    import torch

    return getattr(torch, FP8_STORAGE)


def check_fp8_device(device: str | Any) -> None:
    """fp8 storage is widened layer by layer, so any CUDA GPU and the CPU can hold it; Apple's MPS
    has no float8 tensors at all, so the choice fails there before a weight is read."""
    if str(device).startswith("mps"):
        raise ModelLoadError(
            f"fp8 weights cannot be stored on {device} (no float8 tensors there); use quantize=none "
            "with dtype=bf16 or fp16, or run on a CUDA GPU or the CPU"
        )


def store_fp8(model: Any, compute_dtype: Any) -> Any:
    """Keep ``model``'s layer weights in float8 e4m3fn, computing each layer in ``compute_dtype``.

    diffusers skips what must stay precise (norms, embeddings, the final projection) and any LoRA
    layer, so a LoRA trained or loaded on top keeps its own precision. peft sizes a new LoRA layer by
    its base layer's ``compute_dtype`` when there is one (as for bitsandbytes layers), else by the
    stored weight's dtype, which would make a LoRA loaded later fp8 too; so every fp8 layer names
    its compute dtype.
    """
    from diffusers.hooks.layerwise_casting import _LAYERWISE_CASTING_HOOK

    model.enable_layerwise_casting(storage_dtype=fp8_dtype(), compute_dtype=compute_dtype)
    for module in model.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None and registry.get_hook(_LAYERWISE_CASTING_HOOK) is not None:
            module.compute_dtype = compute_dtype
    return model


def group_offload(pipe: Any, device: str) -> None:
    """Every component's blocks wait in CPU memory and come to ``device`` one block at a time.

    On CUDA the next block is copied on a side stream while this one computes, which makes the
    offload nearly free; on the CPU the same hooks run between CPU and CPU (the same images, no
    saving), which is how the tests check this path without a GPU.
    """
    import torch

    onload = torch.device(device)
    pipe.enable_group_offload(onload_device=onload, offload_device=torch.device("cpu"), offload_type="block_level",
                              num_blocks_per_group=1, use_stream=onload.type == "cuda")
