"""Fixtures for the review tests: projects with enriched or synthetic images ready to review."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

IDENTITY = {"distance": 0.41, "similarity": 0.59, "match": True, "reason": None}


def _picture(seed: int, size: int = 96) -> Image.Image:
    """A distinct little picture per seed (noise: unique pixels, so unique ids)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def picture():
    return _picture


@pytest.fixture
def enriched(project):
    """``project`` with 3 sources and an enriched v1 of ``count`` edits of them; returns (project, records)."""

    def make(count: int = 12, size: int = 96):
        sources = project.create_dataset("source")
        parents = [sources.add_image(_picture(1000 + i, size), stem=f"source_{i}", angle="front",
                                     expression="neutral", caption=f"photo of {project.subject}") for i in range(3)]
        dataset = project.create_dataset("enriched")
        records = []
        with dataset.edit() as edit:
            for i in range(count):
                records.append(edit.add_image(
                    _picture(i, size), stem=f"edit_{i:03d}", parents=[parents[i % 3].id],
                    prompt=f"change the background to scene {i}, keep the person identical",
                    scores={"identity": IDENTITY} if i % 2 == 0 else {},
                ))
        return project, records

    return make


@pytest.fixture
def synthetic(project):
    """``project`` with a synthetic v1 whose images carry model-card angle/expression tags."""

    def make(count: int = 8):
        from flenwheel.core.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS

        dataset = project.create_dataset("synthetic")
        records = []
        with dataset.edit() as edit:
            for i in range(count):
                records.append(edit.add_image(
                    _picture(500 + i), stem=f"gen_{i:03d}", prompt=f"portrait of {project.subject}, {i}",
                    seed=i, angle=CARD_ANGLES[i % len(CARD_ANGLES)],
                    expression=CARD_EXPRESSIONS[i % len(CARD_EXPRESSIONS)],
                ))
        return project, records

    return make
