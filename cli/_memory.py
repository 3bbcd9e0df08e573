"""The memory options every model-loading command shares, so they read the same everywhere.

``--quant`` and ``--quantize`` are the same option (the enrichment issue names the first, the
LoRA trainers' configs the second); both spellings keep working.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..core.data.distributed import Processes
from ..core.models.pipelines import DTYPES, OFFLOADS, QUANTIZATIONS, LoadOptions


def memory_options(text_encoder: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding --dtype, --quant, --quant-text-encoder, --offload, --vae-tiling and --device."""
    options = [
        click.option("--dtype", type=click.Choice(DTYPES), default="bf16", show_default=True,
                     help="Weight and compute precision."),
        click.option("--quant", "--quantize", "quantize", type=click.Choice(QUANTIZATIONS), default="none",
                     show_default=True, help="Transformer 4-bit NF4 / 8-bit (bitsandbytes, NVIDIA GPU)."),
        click.option("--quant-text-encoder", "--quantize-text-encoder", "quantize_text_encoder",
                     type=click.Choice(QUANTIZATIONS), default="none", show_default=True,
                     help=f"{text_encoder} 4-bit NF4 / 8-bit (bitsandbytes, NVIDIA GPU)."),
        click.option("--offload", type=click.Choice(OFFLOADS), default="none", show_default=True,
                     help="CPU offload: model (about half the VRAM) or sequential (least VRAM, slow)."),
        click.option("--vae-tiling", is_flag=True, help="Decode in tiles (less VRAM at large sizes)."),
        click.option("--device", help="cuda, cuda:1, cpu... (default: CUDA when present, else CPU; under "
                     "torchrun or accelerate launch, each process's own GPU)."),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        return functools.reduce(lambda f, option: option(f), reversed(options), command)

    return decorate


def load_options(kw: dict[str, Any]) -> LoadOptions:
    """The LoadOptions a command's memory options describe; under a launcher each process takes its own GPU."""
    return LoadOptions(dtype=kw["dtype"], device=Processes.current().device_for(kw["device"]), quantize=kw["quantize"],
                       quantize_text_encoder=kw["quantize_text_encoder"], offload=kw["offload"],
                       vae_tiling=kw["vae_tiling"])
