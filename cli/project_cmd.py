"""``flenwheel init`` and ``flenwheel verify``: create a project, check it against its manifests."""

from __future__ import annotations

import json

import click

from ..core.data.project import DEFAULT_CLASS_WORD, DEFAULT_TOKEN, Project
from ..core.data.records import STAGES


@click.command("init")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Character name, shown in reports.")
@click.option("--token", default=DEFAULT_TOKEN, show_default=True,
              help="Instance token the LoRA learns (a rare word, used in every caption).")
@click.option("--class-word", default=DEFAULT_CLASS_WORD, show_default=True,
              help="Class word after the token in captions ('person', 'woman', 'man', 'character').")
def init_cmd(project: str, name: str, token: str, class_word: str) -> None:
    """Create a character project folder with the flywheel's layout."""
    created = Project.init(project, name=name, instance_token=token, class_word=class_word)
    click.echo(f"created project '{name}' at {created.root} (token: {created.subject})")
    click.echo(f"next: flenwheel source add {project} PHOTOS...")


@click.command("verify")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def verify_cmd(project: str, as_json: bool) -> None:
    """Check every dataset version against its manifest (changed, missing, extra files, leftover temps)."""
    opened = Project.open(project)
    reports = [opened.dataset(stage, version).verify() for stage in STAGES for version in opened.versions(stage)]
    bad = [report for report in reports if not report.ok]
    if as_json:
        click.echo(json.dumps({"ok": not bad, "datasets": [vars(r) | {"ok": r.ok} for r in reports]}, indent=2))
    else:
        for report in reports:
            click.echo(f"{report.dataset:24s} {'ok' if report.ok else 'PROBLEM'}")
            if report.no_manifest:
                click.echo("  no manifest.json")
            for kind in ("changed", "missing", "extra"):
                for name in getattr(report, kind):
                    click.echo(f"  {kind}: {name}")
            for name in report.temps:
                click.echo(f"  temporary file a killed write left: {name} (the next placement or edit removes it)")
        if not reports:
            click.echo("no datasets yet")
    if bad:
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(init_cmd)
    cli.add_command(verify_cmd)
