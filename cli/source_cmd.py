"""``flenwheel source add|check|remove|retag``: step 1.1, bring photos in, check the set and correct it."""

from __future__ import annotations

import json

import click

from ..core.curate.corrections import SourceChange, remove_sources, retag_sources
from ..core.curate.curation import add_sources, check_sources
from ..core.curate.face_checks import source_checks
from ..core.data.project import Project
from ..core.data.taxonomy import ANGLES, EXPRESSIONS


@click.group("source")
def source_group() -> None:
    """Curate source photos (step 1.1)."""


@source_group.command("add")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--caption", help="Caption with the instance token (or [trigger]); default: built from the tags.")
@click.option("--angle", type=click.Choice(ANGLES), default="unknown", show_default=True, help="View of the face.")
@click.option("--expression", type=click.Choice(EXPRESSIONS), default="unknown", show_default=True,
              help="Facial expression.")
@click.option("--version", help="Dataset version to add to (default: the open one, else a new one).")
@click.option("--mirror", is_flag=True, help="Also add each photo's left-right flip, with the mirrored view tag.")
@click.option("--skip-invalid", is_flag=True, help="Add the readable photos and report the rest (default: add none).")
@click.option("--json", "as_json", is_flag=True, help="Print the added records as JSON.")
def add_cmd(project: str, images: tuple[str, ...], caption: str | None, angle: str, expression: str,
            version: str | None, mirror: bool, skip_invalid: bool, as_json: bool) -> None:
    """Copy photos into data/source/vN/: upright, RGB, 8-bit, quality-checked and captioned."""
    opened = Project.open(project)
    checks, notice = source_checks(opened)
    report = add_sources(opened, images, caption=caption, angle=angle, expression=expression,
                         version=version, mirror=mirror, skip_invalid=skip_invalid, checks=checks)
    set_issues = _set_issues(opened, report.dataset, checks) if report.added else {}
    if as_json:
        click.echo(json.dumps({"dataset": report.dataset, "added": [r.to_json() for r in report.added],
                               "skipped": report.skipped, "set_issues": set_issues,
                               "notices": [notice] if notice else []}, indent=2, ensure_ascii=False))
        return
    if notice:
        click.secho(notice, fg="yellow", err=True)
    for record in report.added:
        reasons = [*((record.quality or {}).get("reasons") or []), *set_issues.pop(record.filename, [])]
        status = "ok" if not reasons else "flagged: " + "; ".join(reasons)
        click.echo(f"added {record.filename:40s} {status}")
    for name, reasons in set_issues.items():
        click.secho(f"earlier source {name}: {'; '.join(reasons)}", fg="yellow")
    for problem in report.skipped:
        click.secho(f"skipped: {problem}", fg="yellow")
    click.echo(f"{len(report.added)} added to {report.dataset}, {len(report.flagged)} flagged, "
               f"{len(report.skipped)} skipped")


def _set_issues(project: Project, label: str, checks: list) -> dict[str, list[str]]:
    """Problems of the whole set (an identity outlier: a different person?) by file name, as the node shows them."""
    dataset = project.dataset("source", label.rsplit("/", 1)[-1])
    names = {record.id: record.filename for record in dataset.records}
    found: dict[str, list[str]] = {}
    for check in checks:
        for image_id, issues in check.set_issues(dataset).items():
            found.setdefault(names.get(image_id, image_id), []).extend(issues)
    return found


@source_group.command("check")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--version", help="Dataset version (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_cmd(project: str, version: str | None, as_json: bool) -> None:
    """Print the seed's step-1.1 criteria with pass/fail; exit 1 when any fails."""
    opened = Project.open(project)
    checks, notice = source_checks(opened)
    report = check_sources(opened, version, checks=checks)
    if as_json:
        click.echo(json.dumps({**report.to_json(), "notices": [notice] if notice else []}, indent=2))
    else:
        if notice:
            click.secho(notice, fg="yellow", err=True)
        click.echo(f"sources {report.dataset}")
        for criterion in report.criteria:
            mark = click.style("PASS", fg="green") if criterion.passed else click.style("FAIL", fg="red")
            click.echo(f"  {mark}  {criterion.name:32s} {criterion.detail}")
        for name, reasons in report.problems.items():
            click.echo(f"  not usable: {name}: {'; '.join(reasons)}")
    if not report.passed:
        raise SystemExit(1)


def _report(change: SourceChange, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"dataset": change.dataset, "new_version": change.new_version,
                               "removed": [r.filename for r in change.removed],
                               "retagged": [r.to_json() for r in change.changed]}, indent=2, ensure_ascii=False))
        return
    for line in change.lines():
        click.echo(line)


@source_group.command("remove")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("--version", help="Source version (default: latest). A finished one is copied into a new version.")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def remove_cmd(project: str, images: tuple[str, ...], version: str | None, as_json: bool) -> None:
    """Take photos (file names or id prefixes) out of the source set."""
    _report(remove_sources(Project.open(project), images, version=version), as_json)


@source_group.command("retag")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True)
@click.option("--angle", type=click.Choice(ANGLES), help="The corrected view of the face.")
@click.option("--expression", type=click.Choice(EXPRESSIONS), help="The corrected facial expression.")
@click.option("--caption", help="A new caption with the instance token (or [trigger]); default: a caption built "
                                "from the old tags is rebuilt from the new ones.")
@click.option("--version", help="Source version (default: latest). A finished one is copied into a new version.")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def retag_cmd(project: str, images: tuple[str, ...], angle: str | None, expression: str | None,
              caption: str | None, version: str | None, as_json: bool) -> None:
    """Correct the angle, expression or caption of photos (file names or id prefixes)."""
    change = retag_sources(Project.open(project), images, angle=angle, expression=expression, caption=caption,
                           version=version)
    _report(change, as_json)


def register(cli: click.Group) -> None:
    cli.add_command(source_group)
