"""Several processes on one job list, started by a launcher (``torchrun``, ``accelerate launch``).

A launcher starts N copies of the same command and tells each its place through the ``WORLD_SIZE``
and ``RANK`` environment variables. ``Processes.current()`` reads them: without a launcher (or with
one process) it is a plain one-process object that needs no accelerate state and changes nothing.
Under a launcher it wraps accelerate's ``PartialState`` (gloo on the CPU, NCCL on GPUs), which
gives each process its own device.

The engines use it in four steps, so a multi-process run writes the same dataset as one process:

1. ``agree`` compares a hash of each process's settings before any work, so a process started with
   another config file fails at once instead of writing a mixed version.
2. ``on_main`` lets the main process pick (or create) the dataset version; the others open it.
3. ``split`` hands each process its consecutive share of the items still to do
   (``split_between_processes``); each process commits its own images, one transaction each, under
   the version's cross-process lock, so a process killed mid-run leaves only whole files.
4. ``merge`` runs after every process has finished its share: the main process checks that every
   planned item is in the version (naming the missing ones otherwise, which a rerun makes) and puts
   the records in plan order, the order a one-process run writes them in.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .dataset import DatasetVersion
from .errors import DatasetError, FlenwheelError
from .records import ImageRecord

T = TypeVar("T")
MISSING_SHOWN = 10


def launched() -> bool:
    """True inside a launcher that started more than one process."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def settings_hash(value: Any) -> str:
    """A short, order-independent hash of JSON-like settings (tuples count as lists)."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Processes:
    """This process's place among the processes of one run (rank 0 of 1 without a launcher)."""

    rank: int = 0
    count: int = 1
    device: str | None = None
    state: Any = None

    @classmethod
    def current(cls) -> Processes:
        if not launched():
            return cls()
        import torch
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return cls(state.process_index, state.num_processes, str(state.device), state)

    @property
    def distributed(self) -> bool:
        return self.count > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device_for(self, requested: str | None) -> str | None:
        """The device this process loads its model on: its own GPU under a launcher unless one is named."""
        if self.distributed and requested in (None, "cuda"):
            return self.device
        return requested

    def split(self, items: Sequence[T]) -> list[T]:
        """This process's consecutive share of ``items`` (all of them in a one-process run)."""
        if not self.distributed:
            return list(items)
        with self.state.split_between_processes(list(items)) as mine:
            return list(mine)

    def gather(self, value: T) -> list[T]:
        """Every process's ``value``, by rank."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.count
        dist.all_gather_object(values, value)
        return values

    def share(self, value: T) -> T:
        """The main process's ``value``, on every process."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wait(self) -> None:
        if self.distributed:
            self.state.wait_for_everyone()

    def agree(self, what: str, value: Any) -> None:
        """Fail on every process unless all of them were given the same ``value`` (hashed)."""
        digests = self.gather(settings_hash(value))
        odd = [rank for rank, digest in enumerate(digests) if digest != digests[0]]
        if odd:
            raise FlenwheelError(
                f"process(es) {', '.join(map(str, odd))} of {self.count} were started with other {what} "
                f"than process 0 (hash {digests[odd[0]]} vs {digests[0]}); start every process with the "
                "same command, options and config files"
            )

    def on_main(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the main process only; every process gets its result or its error."""
        if not self.distributed:
            return work()
        outcome: tuple[bool, Any] | None = None
        if self.is_main:
            try:
                outcome = (True, work())
            except FlenwheelError as exc:
                outcome = (False, str(exc))
        ok, value = self.share(outcome)
        if not ok:
            raise FlenwheelError(value)
        return value

    def merge(self, dataset: DatasetVersion, planned: Sequence[Hashable],
              key: Callable[[ImageRecord], Hashable | None], skipped: Sequence[Hashable] = (),
              describe: Callable[[Hashable], str] = str) -> None:
        """After every share is done: refuse a version with missing items, else order it like the plan.

        ``skipped`` are this process's items that were deliberately not added (a duplicate image).
        A one-process run needs no merge: its records are already complete and in order.
        """
        if not self.distributed:
            return
        everyone_skipped = {item for part in self.gather(list(skipped)) for item in part}
        problem = self.on_main(lambda: merge_records(dataset, planned, key, everyone_skipped, describe))
        if problem:
            raise DatasetError(problem)


def merge_records(dataset: DatasetVersion, planned: Sequence[Hashable],
                  key: Callable[[ImageRecord], Hashable | None], skipped: Collection[Hashable] = (),
                  describe: Callable[[Hashable], str] = str) -> str | None:
    """Put the planned records of ``dataset`` in plan order, in one transaction; else say what is missing.

    Records of other plans keep their places; the planned ones fill their own slots in plan order.
    Returns None when the version is complete, else a message naming the missing items.
    """
    order = {item: index for index, item in enumerate(planned)}
    with dataset.edit() as change:
        images = change.metadata.images
        present = {key(record) for record in images}
        missing = [item for item in planned if item not in present and item not in skipped]
        if missing:
            shown = "; ".join(describe(item) for item in missing[:MISSING_SHOWN])
            more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
            return (f"{dataset.label} is missing {len(missing)} of {len(planned)} planned images "
                    f"({shown}{more}); a process stopped early: run the same command again to make them")
        slots = [index for index, record in enumerate(images) if key(record) in order]
        ordered = sorted((images[index] for index in slots), key=lambda record: order[key(record)])
        for index, record in zip(slots, ordered, strict=True):
            images[index] = record
    return None
