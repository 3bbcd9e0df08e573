"""The triplet report: the seed's step-2.1 criteria, measured, and the side-by-side sheet.

- Count: 10 or more triplets.
- Before and after clearly different: the corrected target against the failed edit, as the mean
  absolute pixel difference (0-100 % of the 0-255 range) and a perceptual difference (the Hamming
  distance of 64-bit difference hashes, robust to small shifts and noise). A target within 2 %
  of the failed edit teaches the editor almost nothing, so the check fails on any such triplet.
- The corrections show the wanted behaviour: the identity distance of the target to the
  character's reference faces against the failed edit's. Every identity-drift correction should
  move closer, and targets should be closer on average. Without faces (tiny test models, a missing
  face_recognition) the report says that it could not measure, instead of inventing a number.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from statistics import mean
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..data.criteria import Criterion, criteria_lines
from ..identity.gate import IdentityGate

MIN_TRIPLETS = 10
MIN_PIXEL_DIFFERENCE = 0.02
HASH_SIDE = 8
CELL = 256
ROWS_PER_SHEET = 25
BACKGROUND = (30, 30, 30)
TEXT = (235, 235, 235)


def pixel_difference(before: Image.Image, after: Image.Image) -> float:
    """Mean absolute difference of RGB values in [0, 1], ``after`` scaled to ``before``'s size."""
    if after.size != before.size:
        after = after.resize(before.size, Image.Resampling.BILINEAR)
    a = np.asarray(before.convert("RGB"), dtype=np.float32)
    b = np.asarray(after.convert("RGB"), dtype=np.float32)
    return round(float(np.abs(a - b).mean() / 255.0), 4)


def _dhash(image: Image.Image) -> np.ndarray:
    small = image.convert("L").resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.int16)
    return pixels[:, 1:] > pixels[:, :-1]


def perceptual_difference(before: Image.Image, after: Image.Image) -> int:
    """Bits (of 64) that differ between the two images' difference hashes."""
    return int(np.count_nonzero(_dhash(before) != _dhash(after)))


@dataclass
class TripletMeasure:
    """How one correction differs from its failed edit."""

    name: str
    issue: str
    pixel: float
    perceptual: int
    target_identity: dict[str, Any] | None = None
    failed_identity: dict[str, Any] | None = None

    @property
    def distances(self) -> tuple[float, float] | None:
        """(target, failed edit) face distances when both pictures have a measured face."""
        target = (self.target_identity or {}).get("distance")
        failed = (self.failed_identity or {}).get("distance")
        return None if target is None or failed is None else (target, failed)


def measure(name: str, issue: str, failed: Image.Image, target: Image.Image,
            scorer: IdentityGate | None) -> TripletMeasure:
    found = TripletMeasure(name, issue, pixel_difference(failed, target), perceptual_difference(failed, target))
    if scorer is not None:
        found.target_identity = scorer.score(target).to_json()
        found.failed_identity = scorer.score(failed).to_json()
    return found


@dataclass
class TripletReport:
    count: int
    measures: list[TripletMeasure] = field(default_factory=list)
    identity_note: str | None = None
    checks: list[Criterion] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    def lines(self) -> list[str]:
        return criteria_lines(self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "passed": self.passed, "identity_note": self.identity_note,
                "checks": [asdict(c) for c in self.checks],
                "triplets": [asdict(m) | {"distances": m.distances} for m in self.measures]}


def _identity_check(measures: list[TripletMeasure], note: str | None) -> Criterion:
    name = "corrections show the wanted behaviour (identity)"
    if note is not None:
        return Criterion(name, None, f"not measured: {note}")
    scored = [m for m in measures if m.distances is not None]
    if not scored:
        faceless = sum(1 for m in measures if (m.target_identity or {}).get("distance") is None)
        return Criterion(name, None, f"not measured: no face found in {faceless} of {len(measures)} targets or in "
                                 "their failed edits, so there is no identity distance to compare")
    closer = [m for m in scored if m.distances[0] < m.distances[1]]
    drift = [m for m in scored if m.issue == "identity_drift"]
    drift_closer = [m for m in drift if m in closer]
    target_mean = mean(m.distances[0] for m in scored)
    failed_mean = mean(m.distances[1] for m in scored)
    passed = len(drift_closer) == len(drift) and target_mean <= failed_mean
    detail = (f"target closer to the character than the failed edit in {len(closer)}/{len(scored)} "
              f"({len(drift_closer)}/{len(drift)} identity-drift corrections); mean face distance "
              f"{target_mean:.3f} (targets) vs {failed_mean:.3f} (failed edits)")
    skipped = len(measures) - len(scored)
    if skipped:
        detail += f"; {skipped} without a face on one side not counted"
    return Criterion(name, passed, detail)


def build_report(measures: list[TripletMeasure], identity_note: str | None) -> TripletReport:
    """The three criteria over the measured triplets."""
    report = TripletReport(len(measures), measures, identity_note)
    report.checks.append(Criterion(f"{MIN_TRIPLETS}+ triplets", len(measures) >= MIN_TRIPLETS,
                               f"{len(measures)} triplets"))
    if measures:
        alike = [m.name for m in measures if m.pixel < MIN_PIXEL_DIFFERENCE]
        detail = (f"mean pixel difference {100 * mean(m.pixel for m in measures):.1f}% "
                  f"(lowest {100 * min(m.pixel for m in measures):.1f}%), perceptual "
                  f"{mean(m.perceptual for m in measures):.1f}/64 hash bits on average")
        if alike:
            detail += f"; within {100 * MIN_PIXEL_DIFFERENCE:.0f}% of the failed edit: {', '.join(alike)}"
        report.checks.append(Criterion("before and after clearly different", not alike, detail))
    report.checks.append(_identity_check(measures, identity_note))
    return report


@dataclass
class SheetRow:
    source: Image.Image
    failed: Image.Image
    target: Image.Image
    text: str


def _cell(image: Image.Image) -> Image.Image:
    return ImageOps.pad(image.convert("RGB"), (CELL, CELL), color=BACKGROUND)


def render_sheets(rows: list[SheetRow], title: str) -> list[Image.Image]:
    """Pages of source | failed edit | corrected target | details, ``ROWS_PER_SHEET`` rows each."""
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    head, pad, text_width = 34, 6, 360
    pages = []
    for start in range(0, max(1, len(rows)), ROWS_PER_SHEET):
        chunk = rows[start:start + ROWS_PER_SHEET]
        sheet = Image.new("RGB", (3 * CELL + text_width + 5 * pad, head + len(chunk) * (CELL + pad) + pad),
                          BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        for column, label in enumerate(("source", "failed edit", "corrected target")):
            draw.text((pad + column * (CELL + pad), 8), label, font=font, fill=TEXT)
        draw.text((pad + 3 * (CELL + pad), 8), title, font=font, fill=TEXT)
        for index, row in enumerate(chunk):
            y = head + index * (CELL + pad)
            for column, image in enumerate((row.source, row.failed, row.target)):
                sheet.paste(_cell(image), (pad + column * (CELL + pad), y))
            wrapped = "\n".join(textwrap.fill(part, 52) for part in row.text.splitlines())
            lines = wrapped.splitlines()[:15]
            draw.multiline_text((pad + 3 * (CELL + pad), y + 4), "\n".join(lines), font=small, fill=TEXT,
                                spacing=3)
        pages.append(sheet)
    return pages
