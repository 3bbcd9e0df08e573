"""The image record (one picture's lineage, carried through every stage) and the metadata file listing them.

A record is the unit the flywheel reasons about: where an image came from (``parents``), what
made it (prompt, seed, model, LoRAs), how good it is (``quality``, ``scores``) and what a person
said about it (``label``, ``reason``). Stages add their own fields freely (``extra="allow"``), so
a new stage never needs a schema change here, and unknown fields written by a newer FLENwheel
survive a round trip through an older one.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Version of the metadata file's layout; a newer one is refused rather than misread.
SCHEMA_VERSION = 1

#: Dataset stages, each a ``data/<stage>/vN/`` folder. ``reruns/vN`` holds the improved-prompt re-runs
#: of ``enriched/vN`` edits reviewed as needs_correction (candidates for the editor LoRA's targets).
STAGES = ("source", "enriched", "synthetic", "pristine", "qwen_training", "benchmark", "reruns")

#: Metadata file name per stage; the seed names ``enrichment_metadata.json`` for enriched sets.
METADATA_FILES = {
    "source": "metadata.json",
    "enriched": "enrichment_metadata.json",
    "synthetic": "metadata.json",
    "pristine": "metadata.json",
    "qwen_training": "metadata.json",
    "benchmark": "metadata.json",
    "reruns": "metadata.json",
}


def utc_now() -> str:
    """Timestamps are UTC ISO-8601 with seconds, so records sort and compare as text."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class LoraRef(BaseModel):
    """A LoRA applied when the image was made: which file (and its hash) at what strength."""

    model_config = ConfigDict(extra="allow")

    path: str
    strength: float = 1.0
    sha256: str | None = None
    name: str | None = None


class ImageRecord(BaseModel):
    """Lineage and verdicts of one image in one dataset version.

    ``id`` is the pixel hash (see ``images.pixel_hash``), ``filename`` is relative to the version
    folder (``good/x.png`` after review placement). The seed's source fields (filename, caption,
    angle, expression, quality) are first-class; everything else a stage needs goes in as extra
    fields or in ``scores``.
    """

    model_config = ConfigDict(extra="allow")

    id: str
    filename: str
    stage: str
    parents: list[str] = Field(default_factory=list)
    caption: str | None = None
    prompt: str | None = None
    seed: int | None = None
    model: str | None = None
    loras: list[LoraRef] = Field(default_factory=list)
    angle: str | None = None
    expression: str | None = None
    width: int | None = None
    height: int | None = None
    quality: dict[str, Any] | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    reason: str | None = None
    created: str = Field(default_factory=utc_now)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready dict; ``None`` fields are kept so the schema is visible in every file."""
        return self.model_dump(mode="json")


@dataclass
class Metadata:
    """The parsed metadata file of one version."""

    stage: str
    dataset_version: str
    status: str = "open"
    created: str = field(default_factory=utc_now)
    finished: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    images: list[ImageRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "dataset_version": self.dataset_version,
            "stage": self.stage,
            "status": self.status,
            "created": self.created,
            "finished": self.finished,
            "info": self.info,
            "images": [record.to_json() for record in self.images],
        }

    def by_id(self, image_id: str) -> ImageRecord | None:
        return next((record for record in self.images if record.id == image_id), None)
