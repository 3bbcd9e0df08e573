"""Socket types and input specs shared by every FLENwheel node."""

from __future__ import annotations

from typing import Any

from ..core.models.pipelines import MEMORY_CHOICES, LoadOptions

PROJECT = "FLENWHEEL_PROJECT"
DATASET = "FLENWHEEL_DATASET"
FLUX_PIPELINE = "FLENWHEEL_FLUX"
QWEN_EDIT_PIPELINE = "FLENWHEEL_QWEN_EDIT"

CATEGORY = "FLENwheel"

PROJECT_INPUT: tuple[str, dict[str, Any]] = (
    PROJECT,
    {"tooltip": "The character project, from a FLENwheel Project node."},
)

VERSION_INPUT: tuple[str, dict[str, Any]] = (
    "STRING",
    {"default": "latest", "tooltip": "Dataset version: 'latest' or vN (v1, v2, ...)."},
)


def memory_input(name: str, tooltip: str) -> tuple[Any, dict[str, Any]]:
    """A loader's memory widget for the ``LoadOptions`` field ``name``: its choices and its default."""
    default = getattr(LoadOptions(), name)
    if name in MEMORY_CHOICES:
        return (list(MEMORY_CHOICES[name]), {"default": default, "tooltip": tooltip})
    return ("BOOLEAN", {"default": default, "tooltip": tooltip})


def version_or_none(value: str) -> str | None:
    """Map the 'latest' widget value (or blank) to None, which the engine reads as the newest version."""
    value = (value or "").strip()
    return None if value in ("", "latest") else value
