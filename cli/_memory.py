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
from ..core.models.pipelines import MEMORY_CHOICES, LoadOptions

_DEFAULTS = LoadOptions()


def _choice(*names: str, field: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A memory option whose choices and default are those of the ``LoadOptions`` field."""
    return click.option(*names, field, type=click.Choice(MEMORY_CHOICES[field]), default=getattr(_DEFAULTS, field),
                        show_default=True, help=help)


def memory_options(text_encoder: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding --dtype, --quant, --quant-text-encoder, --offload, --vae-tiling and --device."""
    options = [
        _choice("--dtype", field="dtype", help="Weight and compute precision."),
        _choice("--quant", "--quantize", field="quantize",
                help="Transformer 4-bit NF4 / 8-bit (bitsandbytes, NVIDIA GPU), or fp8 weights computing in --dtype "
                     "(half of bf16, any CUDA GPU or the CPU)."),
        _choice("--quant-text-encoder", "--quantize-text-encoder", field="quantize_text_encoder",
                help=f"{text_encoder} 4-bit NF4 / 8-bit (bitsandbytes, NVIDIA GPU)."),
        _choice("--offload", field="offload",
                help="CPU offload: model (about half the VRAM), group (one block at a time on CUDA streams: little "
                     "VRAM, nearly full speed) or sequential (least VRAM, slow)."),
        click.option("--vae-tiling", is_flag=True, default=_DEFAULTS.vae_tiling,
                     help="Decode in tiles (less VRAM at large sizes)."),
        click.option("--device", help="cuda, cuda:1, cpu... (default: CUDA when present, else CPU; under "
                     "torchrun or accelerate launch, each process's own GPU)."),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        return functools.reduce(lambda f, option: option(f), reversed(options), command)

    return decorate


def load_options(kw: dict[str, Any]) -> LoadOptions:
    """The LoadOptions a command's memory options describe; under a launcher each process takes its own GPU."""
    options = {name: kw[name] for name in LoadOptions.__dataclass_fields__}
    return LoadOptions(**options | {"device": Processes.current().device_for(kw["device"])})
