"""``flenwheel review serve|status|place|history|order``: human review (steps 1.3 and 1.7) without ComfyUI."""

from __future__ import annotations

import json

import click

from ..core.data.errors import FlenwheelError
from ..core.data.project import Project
from ..core.review.stages import REVIEW_STAGES


@click.group("review")
def review_group() -> None:
    """Label enriched and synthetic images in the browser; see and place the decisions."""


def _targets(project: Project, stage: str | None, version: str | None) -> list[tuple[str, str]]:
    """(review stage, version) pairs to report on: the ones asked for, or every dataset that exists."""
    stages = [stage] if stage else list(REVIEW_STAGES)
    found = [(name, v) for name in stages for v in project.versions(REVIEW_STAGES[name].dataset_stage)
             if version is None or v == version]
    if not found:
        what = f"{stage or 'reviewable'} dataset{f' {version}' if version else 's'}"
        raise FlenwheelError(f"the project has no {what} yet (enrich or generate images first)")
    return found


_STAGE = click.option("--stage", type=click.Choice(list(REVIEW_STAGES)),
                      help="Review stage (default: every stage with a dataset).")
_VERSION = click.option("--version", help="Dataset version, e.g. v1 (default: every version).")


@review_group.command("serve")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback lets others on the network label.")
@click.option("--port", default=8189, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
def serve_cmd(project: str, host: str, port: int, open_browser: bool) -> None:
    """Serve the review page for PROJECT (no ComfyUI needed); decisions are saved as you make them."""
    from ..core.review.server import serve
    from ..core.turn.flywheel_routes import review_extensions

    serve(Project.open(project), host=host, port=port, open_browser=open_browser, log=click.echo,
          extensions=review_extensions())


@review_group.command("status")
@click.argument("project", type=click.Path(file_okay=False))
@_STAGE
@_VERSION
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
@click.option("--check", is_flag=True, help="Exit 1 when any criterion fails (for scripts).")
def status_cmd(project: str, stage: str | None, version: str | None, as_json: bool, check: bool) -> None:
    """Counts, reasons and the seed's criteria: all reviewed, 30+ good, reasons given, 10+ pristine."""
    from ..core.review.summary import summarize

    opened = Project.open(project)
    summaries = [summarize(opened, name, v) for name, v in _targets(opened, stage, version)]
    if as_json:
        click.echo(json.dumps({"reviews": [s.to_json() for s in summaries]}, indent=2, ensure_ascii=False))
    else:
        for summary in summaries:
            for line in summary.lines():
                click.echo(_colour(line))
    if check and not all(summary.passed for summary in summaries):
        raise SystemExit(1)


@review_group.command("place")
@click.argument("project", type=click.Path(file_okay=False))
@_STAGE
@_VERSION
def place_cmd(project: str, stage: str | None, version: str | None) -> None:
    """Move files into good/, corrections/, rejected/ and pristine/ as decided; repairs interrupted runs."""
    from ..core.review.placement import place

    opened = Project.open(project)
    for name, v in _targets(opened, stage, version):
        click.echo(place(opened, name, v).describe())


@review_group.command("history")
@click.argument("project", type=click.Path(file_okay=False))
@_STAGE
@_VERSION
@click.option("--id", "image_id", help="Only this image (its full id).")
def history_cmd(project: str, stage: str | None, version: str | None, image_id: str | None) -> None:
    """Every decision and undo, oldest first (the audit trail)."""
    from ..core.review.store import ReviewStore

    rows = ReviewStore(Project.open(project)).history(stage, version, image_id)
    for row in rows:
        what = f"undo of #{row.undoes} ({row.label})" if row.kind == "undo" else row.label
        fields = (("reason", row.reason_text), ("note", row.note), ("by", row.reviewer))
        extra = "".join(f"; {key}: {value}" for key, value in fields if value)
        click.echo(f"#{row.seq:<5d} {row.at}  {row.stage}/{row.version}  {row.image_id[:12]}  {what}{extra}")
    if not rows:
        click.echo("no decisions yet")


@review_group.command("order")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--version", help="Synthetic version (default: the latest).")
@click.option("--best", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="Mark the first N as suggested, for the person to confirm in the review page (nothing is decided).")
@click.option("--json", "as_json", is_flag=True, help="Print the order and the coverage grids as JSON.")
def order_cmd(project: str, version: str | None, best: int, as_json: bool) -> None:
    """The pristine review's candidates, best gap-filler first, with the training set's coverage before/after."""
    from ..core.review.items import record_index
    from ..core.review.pick_order import pick_order
    from ..core.review.store import ReviewStore

    opened = Project.open(project)
    version = version or opened.latest_version("synthetic")
    if version is None or version not in opened.versions("synthetic"):
        raise FlenwheelError(f"the project has no synthetic {version or 'dataset'} yet (generate images first)")
    records = record_index(opened.dataset("synthetic", version)).records
    order = pick_order(opened, version, records, ReviewStore(opened).current("synthetic", version), best)
    if as_json:
        click.echo(json.dumps(order.to_json(), indent=2))
        return
    for line in order.lines({r.id: r.filename for r in records}):
        click.echo(line)


def _colour(line: str) -> str:
    if line.lstrip().startswith("PASS"):
        return line.replace("PASS", click.style("PASS", fg="green"), 1)
    if line.lstrip().startswith("FAIL"):
        return line.replace("FAIL", click.style("FAIL", fg="red"), 1)
    return line


def register(cli: click.Group) -> None:
    cli.add_command(review_group)
