"""``flenwheel identity score`` and ``flenwheel filter``: identity scoring and step 1.6.

Both print a table by default and a stable JSON document with ``--json`` (schemas in
docs/identity.md). A face-less or unreadable image is a row with a reason, never a crash; the
exit code is 0 unless the arguments are wrong (2) or face_recognition is missing (1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..core.data.errors import FlenwheelError
from ..core.data.images import IMAGE_SUFFIXES, list_image_files
from ..core.data.project import PROJECT_FILE, Project
from ..core.identity.faces import DETECTOR_CHOICES, DetectionSettings, face_api
from ..core.identity.filter import FilterReport, run_filter
from ..core.identity.identity import DEFAULT_TOLERANCE, POLICIES, IdentityScore, IdentityScorer, ReferenceSet
from ..core.identity.pool import score_files
from ..core.identity.references import collect_references


def scoring_options(func):
    """Options shared by both commands (tolerance, multi-face policy, detector, worker processes)."""
    options = [
        click.option(
            "--tolerance",
            type=click.FloatRange(0.0, 2.0, min_open=True),
            default=DEFAULT_TOLERANCE,
            show_default=True,
            help="Match when the distance is at or under this (lower = stricter).",
        ),
        click.option(
            "--policy",
            type=click.Choice(POLICIES),
            default="largest",
            show_default=True,
            help="With several faces: score the largest, the best match, or reject the image.",
        ),
        click.option(
            "--detect-side",
            type=click.IntRange(min=0),
            default=512,
            show_default=True,
            help="Detect faces on a copy this long (0: full size); encodings always use full size.",
        ),
        click.option(
            "--detector",
            type=click.Choice(DETECTOR_CHOICES),
            default="auto",
            show_default=True,
            help="auto: mediapipe where installed, else hog. mediapipe: BlazeFace, finds front, half and profile "
            "faces in a few ms. hog: dlib, misses most profiles. cnn: dlib, finds turned faces, ~6 s per image on CPU.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Processes scoring images at once (0: every CPU core); the scores are the same.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _expand(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        files.extend(list_image_files(path) if path.is_dir() else [path])
    return files


def _references(refs: tuple[str, ...], settings: DetectionSettings) -> ReferenceSet:
    """A project folder gives its sources (cached in the project); files and folders give their images."""
    projects = [ref for ref in refs if (Path(ref) / PROJECT_FILE).is_file()]
    plain = tuple(ref for ref in refs if ref not in projects)
    files = _expand(plain)
    if plain and not files:
        raise click.BadParameter(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(plain)}",
                                 param_hint="--ref")
    return collect_references(
        settings, [Project.open(ref).dataset("source") for ref in projects], paths=files
    )


def _score_row(image: str, score: IdentityScore) -> dict[str, Any]:
    return {"image": image, **score.to_json()}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _echo_references(refs: ReferenceSet) -> None:
    names = ", ".join(Path(name).name for name in refs.to_json()["names"])
    click.echo(f"references: {len(refs.references)} ({names})")
    for name, why in refs.skipped.items():
        click.secho(f"  left out {Path(name).name}: {why}", fg="yellow")
    for warning in refs.warnings:
        click.secho(f"  warning: {warning}", fg="yellow")


@click.group("identity")
def identity_group() -> None:
    """Identity scoring with face_recognition (needs the optional face_recognition install)."""


@identity_group.command("score")
@click.option(
    "--ref",
    "refs",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="Reference image, folder of images, or project folder (its sources); repeat for more.",
)
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True))
@scoring_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema in docs/identity.md).")
def score_cmd(
    refs: tuple[str, ...],
    images: tuple[str, ...],
    tolerance: float,
    policy: str,
    detect_side: int,
    detector: str,
    workers: int,
    as_json: bool,
) -> None:
    """Score IMAGES (files or folders) against the references: distance, similarity, match, faces, reason."""
    face_api()
    settings = DetectionSettings(detect_side, detector)
    try:
        scorer = IdentityScorer(_references(refs, settings), tolerance, policy)
    except FlenwheelError as exc:
        raise click.BadParameter(str(exc), param_hint="--ref") from None
    files = _expand(images)
    if not files:
        raise click.BadParameter(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(images)}",
                                 param_hint="IMAGES")
    rows = [_score_row(str(path), score) for path, score in zip(files, score_files(scorer, files, workers),
                                                                   strict=True)]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "tolerance": tolerance,
                    "policy": policy,
                    "detector": settings.tag,
                    "references": scorer.references.to_json(),
                    "images": rows,
                },
                indent=2,
            )
        )
        return
    _echo_references(scorer.references)
    width = max(len(Path(row["image"]).name) for row in rows)
    click.echo(f"{'image':{width}s}  distance  mean   similarity  match  faces  reason")
    for row in rows:
        match = click.style("yes", fg="green") if row["match"] else click.style("no ", fg="red")
        click.echo(
            f"{Path(row['image']).name:{width}s}  {_fmt(row['distance']):8s}  {_fmt(row['mean_distance']):5s}"
            f"  {_fmt(row['similarity']):10s}  {match}    {row['face_count']:<5d}  {row['reason'] or ''}"
        )


def _echo_filter(report: FilterReport) -> None:
    _echo_references(report.scorer.references)
    for outcome in report.removed:
        click.echo(f"removed {outcome.filename}: {outcome.score.reason if outcome.score else ''}")
    for outcome in report.skipped:
        click.echo(f"skipped {outcome.filename}: already reviewed")
    click.echo(report.summary_line())


@click.command("filter")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--version", help="Synthetic dataset version vN (default: latest).")
@click.option("--source-version", help="Source version whose images are the references (default: latest).")
@scoring_options
@click.option(
    "--rescore", is_flag=True, help="Measure every image again instead of reusing stored distances."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema in docs/identity.md).")
def filter_cmd(
    project: str,
    version: str | None,
    source_version: str | None,
    tolerance: float,
    policy: str,
    detect_side: int,
    detector: str,
    workers: int,
    rescore: bool,
    as_json: bool,
) -> None:
    """Step 1.6: keep the synthetic images of the character (copied to data/synthetic/vN/filtered/)."""
    opened = Project.open(project)
    face_api()
    bar = None

    def progress(done: int, total: int, _preview) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="scoring", file=sys.stderr)
        bar.update(1)

    try:
        report = run_filter(
            opened,
            version,
            tolerance,
            policy,
            detect_side,
            detector,
            source_version,
            rescore,
            progress=None if as_json else progress,
            workers=workers,
        )
    finally:
        if bar is not None:
            bar.render_finish()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _echo_filter(report)


def register(cli: click.Group) -> None:
    cli.add_command(identity_group)
    cli.add_command(filter_cmd)
