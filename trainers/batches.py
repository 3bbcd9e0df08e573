"""A deterministic batch order: the data position is a pure function of (seed, step).

Exact resume needs the resumed run to see the same batches as an uninterrupted one. Instead of
pickling a data loader, each epoch's order is derived from ``(seed, epoch)``: items are shuffled
within their bucket, cut into global batches (``batch_size x processes``, a short last batch is
filled from the same bucket), and the batches are shuffled. Rank ``r`` takes its slice of each
global batch, so data-parallel processes see different images and the position never needs saving
beyond the step itself. Per-step randomness (noise, timesteps, caption dropout) is seeded from
``(seed, rank, step)`` the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np


def step_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (seed, rank, step, ...)."""
    return int(
        np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1)
    )


@dataclass
class BatchPlan:
    buckets: list[Hashable]  # batching key of each item (its bucket size, for edits also its source count)
    batch_size: int
    world_size: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        groups: dict[Hashable, list[int]] = defaultdict(list)
        for index, size in enumerate(self.buckets):
            groups[size].append(index)
        self._groups = dict(sorted(groups.items(), key=lambda kv: repr(kv[0])))
        self._cache: tuple[int, list[list[int]]] | None = None

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> int:
        return sum(-(-len(members) // self.global_batch) for members in self._groups.values())

    def epoch(self, number: int) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == number:
            return self._cache[1]
        rng = np.random.default_rng(step_seed(self.seed, 1_000_003, number))
        batches: list[list[int]] = []
        for members in self._groups.values():
            order = [members[i] for i in rng.permutation(len(members))]
            while len(order) % self.global_batch:
                order.append(order[len(order) % len(members)])
            batches += [order[i : i + self.global_batch] for i in range(0, len(order), self.global_batch)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (number, batches)
        return batches

    def position(self, micro_step: int) -> tuple[int, int]:
        """(epoch, batch index) of the ``micro_step``-th global batch since the start of training."""
        return divmod(micro_step, self.batches_per_epoch)

    def batch(self, micro_step: int, rank: int = 0) -> list[int]:
        epoch, index = self.position(micro_step)
        chunk = self.epoch(epoch)[index]
        return chunk[rank * self.batch_size : (rank + 1) * self.batch_size]
