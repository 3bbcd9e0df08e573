"""Fixtures for Flywheel 2: projects whose enriched edits were reviewed as needs_correction."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PIL import Image

REASONS = ("identity_drift", "artifacts", "insufficient_change", "eyes changed colour")


def noise(seed: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A distinct picture per seed (never a face)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


@pytest.fixture
def picture():
    return noise


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every triplet test module runs its tiny models on one thread (``one_torch_thread``)."""


@pytest.fixture
def corrections(project):
    """A project with 3 sources and an enriched v1 of ``count`` edits, the first ``corrected`` of them
    reviewed as needs_correction (reasons cycling through presets and free text), the rest good."""
    from flenwheel.core.review.placement import place
    from flenwheel.core.review.store import ReviewStore

    def make(count: int = 12, corrected: int | None = None, size: tuple[int, int] = (64, 64)):
        corrected = count if corrected is None else corrected
        sources = project.create_dataset("source")
        parents = [sources.add_image(noise(1000 + i, size), stem=f"src{i}", angle="front",
                                     caption=f"photo of {project.subject}") for i in range(3)]
        enriched = project.create_dataset("enriched", info={"model_source": "tiny", "model": "tiny", "loras": []})
        with enriched.edit() as edit:
            records = [edit.add_image(
                noise(i, size), stem=f"edit_{i:02d}", parents=[parents[i % 3].id], seed=i, steps=2, true_cfg=1.0,
                prompt=f"Replace the background with scene {i}. Keep the person identical.", family="background",
                value=f"scene{i}", caption=f"photo of {project.subject}, scene {i} background",
                source_dataset=sources.label,
            ) for i in range(count)]
        store = ReviewStore(project)
        for i, record in enumerate(records):
            if i < corrected:
                store.decide(record.id, "enriched", "v1", "needs_correction", reason=REASONS[i % len(REASONS)])
            else:
                store.decide(record.id, "enriched", "v1", "good")
        place(project, "enriched", "v1")
        placed = {r.id: r for r in enriched.records}
        return types.SimpleNamespace(project=project, sources=parents, records=[placed[r.id] for r in records],
                                     enriched=enriched)

    return make


@pytest.fixture
def drop_fix():
    """Save ``image`` into corrections/fixed/ the way a user would (any name, any format)."""

    def drop(case, name: str, image: Image.Image):
        folder = case.enriched.path / "corrections" / "fixed"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        image.save(path)
        return path

    return drop
