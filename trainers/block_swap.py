"""Block swap: the frozen weights of N transformer blocks live in CPU memory during training.

musubi-tuner's approach (``custom_offloading_utils.ModelOffloader``), rebuilt on module hooks so it
works with diffusers' transformers unchanged: a block's frozen weights come to the device just
before the block runs and leave right after, and with gradient checkpointing the recomputation in
the backward pass brings them back the same way. The LoRA weights inside a block are trainable,
small and updated by the optimiser every step, so they never move; only the frozen base weights
are swapped, and since nothing writes them, leaving the device is dropping the device copy.

On CUDA the next block's weights are copied on a side stream from pinned memory while the current
block computes; on the CPU (``device`` = ``storage`` = cpu) the same hooks run and copy, which is
how the tests check that swapping changes no number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..core.data.errors import FlenwheelError


class BlockSwapError(FlenwheelError):
    """``blocks_to_swap`` asks for more blocks than the model has, or the family allows."""


def transformer_blocks(model: torch.nn.Module, containers: Sequence[str]) -> list[torch.nn.Module]:
    """The model's blocks in the order they run: each container (``transformer_blocks``, then
    ``single_transformer_blocks``...) in turn."""
    return [block for name in containers for block in getattr(model, name, ())]


def check_blocks_to_swap(count: int, blocks: int, family_max: int, title: str) -> None:
    """One line naming what fits, before any weight is read."""
    if count > blocks:
        raise BlockSwapError(f"blocks_to_swap: {count} is more than the {blocks} blocks this {title} transformer "
                             f"has; use 0 to {min(blocks, family_max)}")
    if count > family_max:
        raise BlockSwapError(f"blocks_to_swap: {count} is above {family_max}, the most {title} allows; use 0 to "
                             f"{family_max}, or quantize: fp8 / nf4 for less memory")


class BlockSwap:
    """Keeps the frozen weights of the last ``count`` blocks in ``storage`` and brings each block to
    ``device`` for its forward pass (and its recomputation under gradient checkpointing)."""

    def __init__(self, blocks: Sequence[torch.nn.Module], count: int, device: torch.device | str,
                 storage: torch.device | str = "cpu") -> None:
        self.device, self.storage = torch.device(device), torch.device(storage)
        self.blocks = list(blocks)
        self.swapped = self.blocks[len(self.blocks) - count:] if count else []
        self.homes: dict[int, list[tuple[torch.nn.Parameter, torch.Tensor]]] = {}
        self.pending: dict[int, Any] = {}
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.loads = 0
        self.last: int | None = None

    def install(self, model: torch.nn.Module) -> None:
        """Move everything but the swapped blocks' frozen weights to the device and hook the blocks."""
        frozen = {id(p) for block in self.swapped for p in block.parameters() if not p.requires_grad}
        for param in model.parameters():
            if id(param) not in frozen:
                param.data = param.data.to(self.device)
        for buffer_owner in model.modules():
            for name, buffer in buffer_owner.named_buffers(recurse=False):
                setattr(buffer_owner, name, buffer.to(self.device))
        for index, block in enumerate(self.swapped):
            home = [(p, self._stored(p.data)) for p in block.parameters() if not p.requires_grad]
            for param, stored in home:
                param.data = stored
            self.homes[index] = home
            block.register_forward_pre_hook(lambda module, args, i=index: self._arrive(i))
            block.register_forward_hook(lambda module, args, output, i=index: self._leave(i))

    def _stored(self, tensor: torch.Tensor) -> torch.Tensor:
        stored = tensor.to(self.storage)
        return stored.pin_memory() if self.stream is not None else stored

    def _copy_in(self, index: int) -> None:
        """Start copying block ``index``'s weights to the device (on the side stream on CUDA)."""
        if index in self.pending or not 0 <= index < len(self.swapped):
            return
        if self.stream is None:
            for param, stored in self.homes[index]:
                param.data = stored.to(self.device, copy=True)
            self.pending[index] = None
            return
        with torch.cuda.stream(self.stream):
            for param, stored in self.homes[index]:
                param.data = stored.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        self.pending[index] = event

    def _arrive(self, index: int) -> None:
        """Before block ``index`` runs: its weights on the device, the next block's on their way.

        Blocks run in order in the forward pass and in reverse when gradient checkpointing
        recomputes them in the backward pass, so the next block is the one further that way.
        """
        self._copy_in(index)
        event = self.pending[index]
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            for param, _ in self.homes[index]:
                param.data.record_stream(current)
        self.loads += 1
        step = -1 if self.last is not None and index < self.last else 1
        self.last = index
        # torch's checkpoint may stop a recomputation before the block's end, so its leave hook
        # never runs: such a block leaves when another arrives
        for stale in [i for i in self.pending if i not in (index, index + step)]:
            self._leave(stale)
        self._copy_in(index + step)

    def _leave(self, index: int) -> None:
        """After block ``index`` ran: drop its device copy (the stored weights are unchanged)."""
        for param, stored in self.homes[index]:
            param.data = stored
        self.pending.pop(index, None)

    def resident(self) -> int:
        """How many swapped blocks have their weights on the device now (tests and logs)."""
        return sum(
            1 for home in self.homes.values()
            if any(param.data.data_ptr() != stored.data_ptr() for param, stored in home)
        )
