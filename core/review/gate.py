"""The engine behind the ReviewGate node: which images a gate covers, waiting for them, its outputs.

A gate covers some images of one dataset version (a dataset handle's subset, images it was given,
or a whole version). In wait mode it polls the store until every covered image has a verdict,
calling ``on_tick`` between polls (the node checks ComfyUI's interrupt and notifies the page
there) and applying the timeout policy: ``fail`` raises, ``pass_decided`` goes on with what is
decided. Either way the gate then places the decisions and splits the covered images by output
slot (accept, correct, reject), each as a dataset handle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.errors import FlenwheelError
from ..data.handles import DatasetHandle
from ..data.project import Project
from .placement import PlacementReport, place, pristine_dataset
from .stages import ReviewStage, Slot, review_stage
from .store import ReviewStore
from .summary import ReviewSummary, summarize

TimeoutPolicy = Literal["fail", "pass_decided"]
SLOTS: tuple[Slot, ...] = ("accept", "correct", "reject")
POLL_S = 0.5


class ReviewTimeout(FlenwheelError):
    """The reviewer did not finish in time and the policy says to stop."""


@dataclass
class GateScope:
    """The images one gate covers."""

    project: Project
    stage: ReviewStage
    dataset: DatasetVersion
    ids: tuple[str, ...]

    @property
    def version(self) -> str:
        return self.dataset.version

    def pending(self) -> list[str]:
        decided = ReviewStore(self.project).current(self.stage.name, self.version)
        return [image_id for image_id in self.ids if image_id not in decided]


@dataclass
class GateResult:
    scope: GateScope
    handles: dict[Slot, DatasetHandle]
    summary: ReviewSummary
    placement: PlacementReport
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = self.summary.lines() + [f"placement: {self.placement.describe()}"] + self.notes
        return "\n".join(lines)


def scope_for(project: Project, stage: str, handle: DatasetHandle | None = None, version: str | None = None,
              images: Sequence[Image.Image] = ()) -> GateScope:
    """What a gate covers: the handle's images, else the given images (added to the stage's
    dataset), else every image of ``version`` (the latest when None)."""
    spec = review_stage(stage)
    if handle is not None:
        if handle.dataset.stage != spec.dataset_stage:
            raise FlenwheelError(f"the {stage} review takes {spec.dataset_stage} datasets, "
                                 f"but the dataset input is {handle.label}")
        return GateScope(project, spec, handle.dataset, tuple(record.id for record in handle.records()))
    if images:
        dataset = _open_version(project, spec.dataset_stage, version)
        return GateScope(project, spec, dataset, tuple(_add_images(dataset, images)))
    dataset = project.dataset(spec.dataset_stage, version)
    return GateScope(project, spec, dataset, tuple(record.id for record in dataset.records))


def wait_for_review(scope: GateScope, timeout_s: float, policy: TimeoutPolicy,
                    on_tick: Callable[[int, int], None] = lambda pending, total: None,
                    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                    poll_s: float = POLL_S) -> bool:
    """Block until every covered image is decided; returns True when it stopped on the timeout."""
    deadline = clock() + timeout_s if timeout_s > 0 else math.inf
    while True:
        pending = len(scope.pending())
        on_tick(pending, len(scope.ids))
        if pending == 0:
            return False
        if clock() >= deadline:
            if policy == "fail":
                raise ReviewTimeout(
                    f"{pending} of {len(scope.ids)} images of {scope.dataset.label} are still undecided "
                    f"after {timeout_s:.0f} s; the decisions made so far are saved. Run the graph again to "
                    "continue, or set on_timeout to pass_decided"
                )
            return True
        sleep(poll_s)


def finish(scope: GateScope, timed_out: bool = False) -> GateResult:
    """Place the decisions and split the covered images by output slot."""
    report = place(scope.project, scope.stage.name, scope.version)
    decided = ReviewStore(scope.project).current(scope.stage.name, scope.version)
    handles: dict[Slot, DatasetHandle] = {}
    for slot in SLOTS:
        spec = scope.stage.slot_label(slot)
        ids = [i for i in scope.ids if spec and i in decided and decided[i].label == spec.name]
        handles[slot] = DatasetHandle(_slot_dataset(scope, slot, bool(ids)), tuple(ids))
    summary = summarize(scope.project, scope.stage.name, scope.version, scope.ids)
    notes = ["stopped at the timeout with images still pending (on_timeout = pass_decided)"] * timed_out
    return GateResult(scope, handles, summary, report, timed_out, notes)


def _slot_dataset(scope: GateScope, slot: Slot, any_ids: bool) -> DatasetVersion:
    """Pristine picks are handed on from ``data/pristine/vN``; everything else from the reviewed set."""
    if scope.stage.placement == "pristine" and slot == "accept" and any_ids:
        found = pristine_dataset(scope.project, scope.dataset, create=False)
        if found is not None:
            return found
    return scope.dataset


def _open_version(project: Project, stage: str, version: str | None) -> DatasetVersion:
    """The named version (created if new), else the latest open one, else a new one."""
    if version:
        exists = version in project.versions(stage) and DatasetVersion(project, stage, version).exists()
        return project.dataset(stage, version) if exists else project.create_dataset(stage, version)
    latest = project.latest_version(stage)
    if latest and not project.dataset(stage, latest).finished:
        return project.dataset(stage, latest)
    return project.create_dataset(stage)


def _add_images(dataset: DatasetVersion, images: Sequence[Image.Image]) -> list[str]:
    """Add the gate's images (an image already there is reviewed as that record)."""
    ids = []
    for number, image in enumerate(images):
        try:
            record = dataset.add_image(image, stem=f"review_{number:04d}", origin="ReviewGate input")
        except DuplicateImageError as exc:
            record = exc.existing
        if record.id not in ids:
            ids.append(record.id)
    return ids
