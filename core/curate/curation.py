"""Step 1.1, source curation: bring the user's photos into ``data/source/vN/`` and check the set.

Adding is all-or-nothing by default: every input is decoded, hashed and checked before the first
file is written, so a folder with one corrupt photo changes nothing and the message lists every
problem at once. ``skip_invalid`` adds the good ones and reports the rest.

Per-image checks beyond quality (faces, identity outliers) plug in through ``SourceCheck``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps

from ..data.criteria import Criterion
from ..data.dataset import DatasetVersion
from ..data.errors import DatasetError, FlenwheelError, ImageLoadError
from ..data.images import list_image_files, load_image, pixel_hash, to_rgb8
from ..data.project import Project
from ..data.records import ImageRecord
from ..data.taxonomy import ANGLES, EXPRESSIONS, MIRRORED_ANGLE
from .quality import QualityThresholds, assess

TRIGGER = "[trigger]"
MIN_USABLE = 10
MIN_ANGLES = 2


class CurationError(FlenwheelError):
    """Inputs refused as a whole; the message lists every problem."""


class SourceCheck(Protocol):
    """An extra check on sources (e.g. faces): per image, and over the whole set."""

    name: str

    def image_issues(self, image: Image.Image) -> list[str]:
        """Problems with one image, as reasons a person can read ("no face")."""

    def image_scores(self, image: Image.Image) -> dict[str, Any]:
        """Measurements to keep in the record's ``scores`` (the faces' view and expression), by key."""

    def set_issues(self, dataset: DatasetVersion) -> dict[str, list[str]]:
        """Problems only visible across the set (an outlier identity), by record id."""


@dataclass
class Candidate:
    """One image about to be added: where it came from, its pixels, id and view tag."""

    origin: str
    name: str
    image: Image.Image
    image_id: str
    angle: str
    mirror_of: str | None = None

    def mirrored(self) -> Candidate:
        """The left-right flip, tagged with the mirrored view (half-left becomes half-right)."""
        image = ImageOps.mirror(self.image)
        return Candidate(self.origin, f"{self.name}_mirror", image, pixel_hash(image),
                         MIRRORED_ANGLE.get(self.angle, self.angle), self.image_id)


@dataclass
class AddReport:
    dataset: str
    added: list[ImageRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[ImageRecord]:
        return [record for record in self.added if not record.quality or not record.quality.get("passed")]


@dataclass
class CheckReport:
    dataset: str
    criteria: list[Criterion]
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(criterion.passed for criterion in self.criteria)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "passed": self.passed,
            "criteria": [vars(c) for c in self.criteria],
            "problems": self.problems,
        }


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as their image files (sorted); a missing path is an error."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = list_image_files(path)
            if not found:
                raise CurationError(f"{path} contains no image files (png, jpg, webp, ...)")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise CurationError(f"{path} does not exist")
    if not files:
        raise CurationError("no images given")
    return files


def make_caption(project: Project, caption: str | None, angle: str, expression: str) -> str:
    """The training caption: the user's (with ``[trigger]`` filled in) or one built from the tags.

    A caption must name the instance token, or the LoRA never learns to tie the face to it.
    """
    if caption:
        if not caption.isprintable():  # undecodable argv bytes arrive as surrogates, which are not printable
            raise CurationError(f"caption {caption!r} holds bytes that are not UTF-8 text or control characters; "
                                "type it again as plain text")
        text = caption.replace(TRIGGER, project.subject).strip()
        if project.token not in text:
            raise CurationError(
                f"caption '{caption}' does not contain the instance token '{project.token}'; "
                f"write it in (e.g. 'photo of {project.subject}, {caption}'), use {TRIGGER}, or omit --caption"
            )
        return text
    parts = [f"photo of {project.subject}"]
    if angle != "unknown":
        parts.append(f"{angle} view")
    if expression != "unknown":
        parts.append(expression)
    return ", ".join(parts)


def check_vocabulary(angle: str, expression: str) -> None:
    if angle not in ANGLES:
        raise CurationError(f"unknown angle '{angle}'; use one of {', '.join(ANGLES)}")
    if expression not in EXPRESSIONS:
        raise CurationError(f"unknown expression '{expression}'; use one of {', '.join(EXPRESSIONS)}")


def _decode_files(files: Sequence[Path], angle: str) -> tuple[list[Candidate], list[str]]:
    candidates, problems = [], []
    for path in files:
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            problems.append(str(exc))
            continue
        candidates.append(Candidate(str(path.resolve()), path.stem, image, pixel_hash(image), angle))
    return candidates, problems


def _deduplicate(candidates: Sequence[Candidate], existing: set[str],
                 mirror: bool) -> tuple[list[Candidate], list[str]]:
    kept: list[Candidate] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for original in candidates:
        for candidate in (original, original.mirrored()) if mirror else (original,):
            if candidate.image_id in existing:
                problems.append(f"{candidate.name} ({candidate.origin}) is a duplicate of an image already in "
                                f"the dataset (id {candidate.image_id[:12]})")
            elif candidate.image_id in seen:
                problems.append(f"{candidate.name} ({candidate.origin}) is a duplicate of {seen[candidate.image_id]}"
                                " (same pixels)")
            else:
                seen[candidate.image_id] = candidate.origin
                kept.append(candidate)
    return kept, problems


def target_dataset(project: Project, version: str | None) -> DatasetVersion:
    """The version to add to: the one named, else the latest still open, else a new one."""
    if version:
        if version in project.versions("source"):
            return project.dataset("source", version)
        return project.create_dataset("source", version)
    latest = project.latest_version("source")
    if latest and not project.dataset("source", latest).finished:
        return project.dataset("source", latest)
    return project.create_dataset("source")


def add_sources(
    project: Project,
    inputs: Iterable[str | Path] = (),
    images: Sequence[tuple[str, Image.Image]] = (),
    caption: str | None = None,
    angle: str = "unknown",
    expression: str = "unknown",
    version: str | None = None,
    skip_invalid: bool = False,
    mirror: bool = False,
    limits: QualityThresholds | None = None,
    checks: Sequence[SourceCheck] = (),
    on_image: Callable[[ImageRecord], None] | None = None,
) -> AddReport:
    """Normalise, check, caption and store source photos; see the module docstring for the rules.

    ``inputs`` are files or folders; ``images`` are already decoded (name, picture) pairs, e.g. a
    ComfyUI IMAGE batch. ``mirror`` also adds each photo's left-right flip (a common way to
    double a small set), with the mirrored view tag; skip it for faces with strongly asymmetric
    features (a hair parting, a scar), which the flip would put on both sides.
    """
    check_vocabulary(angle, expression)
    make_caption(project, caption, angle, expression)
    files = expand_inputs(inputs) if inputs else []
    decoded, problems = _decode_files(files, angle)
    decoded += [Candidate(f"image {name}", name, to_rgb8(image), pixel_hash(image), angle) for name, image in images]
    if not files and not images:
        raise CurationError("no images given")
    existing_version = version or project.latest_version("source")
    existing: set[str] = set()
    if existing_version and existing_version in project.versions("source"):
        existing = {record.id for record in project.dataset("source", existing_version).records}
    candidates, duplicates = _deduplicate(decoded, existing, mirror)
    problems += duplicates
    if problems and not skip_invalid:
        raise CurationError(
            "nothing was added, because:\n  - " + "\n  - ".join(problems)
            + "\nfix or remove these files, or pass --skip-invalid to add the rest"
        )
    if not candidates and skip_invalid and decoded and all(c.image_id in existing for c in decoded):
        # every photo is already a source (a re-queued graph, a repeated command): nothing to do
        return AddReport(dataset=project.dataset("source", existing_version).label, skipped=problems)
    if not candidates:
        raise CurationError("no usable images to add:\n  - " + "\n  - ".join(problems))
    dataset = target_dataset(project, version)
    report = AddReport(dataset=dataset.label, skipped=problems)
    for candidate in candidates:
        quality = assess(candidate.image, limits).to_json()
        quality["reasons"] += [issue for check in checks for issue in check.image_issues(candidate.image)]
        quality["passed"] = not quality["reasons"]
        scores = {key: value for check in checks for key, value in check.image_scores(candidate.image).items()}
        extra = {"parents": [candidate.mirror_of], "augmentation": "mirror"} if candidate.mirror_of else {}
        try:
            record = dataset.add_image(
                candidate.image, stem=candidate.name,
                caption=make_caption(project, caption, candidate.angle, expression),
                angle=candidate.angle, expression=expression, quality=quality, source_file=candidate.origin,
                scores=scores, **extra,
            )
        except DatasetError as exc:
            report.skipped.append(str(exc))
            continue
        report.added.append(record)
        if on_image:
            on_image(record)
    return report


def check_sources(project: Project, version: str | None = None, checks: Sequence[SourceCheck] = ()) -> CheckReport:
    """The seed's success criteria for step 1.1, each with pass/fail and the numbers behind it."""
    dataset = project.dataset("source", version)
    records = dataset.records
    problems: dict[str, list[str]] = {}
    for record in records:
        reasons = list((record.quality or {}).get("reasons", []))
        if not dataset.image_path(record).is_file():
            reasons.append("file missing")
        if reasons:
            problems[record.filename] = reasons
    for check in checks:
        by_name = {record.id: record.filename for record in records}
        for image_id, issues in check.set_issues(dataset).items():
            problems.setdefault(by_name.get(image_id, image_id), []).extend(issues)
    usable = [record for record in records if record.filename not in problems]
    angles = sorted({record.angle for record in usable if record.angle and record.angle != "unknown"})
    uncaptioned = [record.filename for record in records if not record.caption or project.token not in record.caption]
    incomplete = [
        record.filename
        for record in records
        if not all([record.filename, record.caption, record.angle, record.expression, record.quality])
    ]
    criteria = [
        Criterion("usable images >= 10", len(usable) >= MIN_USABLE, f"{len(usable)} of {len(records)} usable"),
        Criterion("angles >= 2", len(angles) >= MIN_ANGLES, ", ".join(angles) or "no angle tagged"),
        Criterion("all captioned with the token", not uncaptioned and bool(records),
                  f"{len(uncaptioned)} without '{project.token}'" if uncaptioned else "all captioned"),
        Criterion("metadata complete", not incomplete and bool(records),
                  f"{len(incomplete)} incomplete records" if incomplete else f"{len(records)} complete records"),
    ]
    return CheckReport(dataset=dataset.label, criteria=criteria, problems=problems)
