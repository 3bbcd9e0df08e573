"""``flenwheel init`` and ``flenwheel verify``: create a project, check it against its manifests."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.data.atomic import atomic_write_text
from ..core.data.errors import FlenwheelError
from ..core.data.project import DEFAULT_CLASS_WORD, DEFAULT_TOKEN, Project
from ..core.data.records import STAGES
from ._presets import preset_options

#: where ``init --gpu`` writes the card's turn config, inside the new project
TURN_FILE = "turn.yaml"


@click.command("init")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--name", help="Character name, shown in reports (default: the folder's name).")
@click.option("--token", default=DEFAULT_TOKEN, show_default=True,
              help="Instance token the LoRA learns (a rare word, used in every caption).")
@click.option("--class-word", default=DEFAULT_CLASS_WORD, show_default=True,
              help="Class word after the token in captions ('person', 'woman', 'man', 'character').")
@preset_options
def init_cmd(project: str, name: str | None, token: str, class_word: str, gpu: str | None,
             character_base: str | None, editor: str | None) -> None:
    """Create a character project folder with the flywheel's layout.

    With --gpu N it also writes PROJECT/turn.yaml, the turn config for a card of N GB: the memory
    options of every stage from the registry's table (the README's memory table), each key commented.
    """
    from ..core.turn.presets import preset_yaml

    if (gpu is None) and (character_base or editor):
        raise click.UsageError("--character-base and --editor choose a preset's families; add --gpu N")
    preset = preset_yaml(int(gpu), character_base, editor) if gpu else None  # a bad preset fails before any write
    folder = Path(project).expanduser().resolve()
    turn_file = folder / TURN_FILE
    if preset and turn_file.exists():
        raise FlenwheelError(f"{turn_file} exists; not overwritten (flenwheel run --print-config --gpu {gpu} prints "
                             "the preset)")
    name = name or folder.name
    created = Project.init(project, name=name, instance_token=token, class_word=class_word)
    click.echo(f"created project '{name}' at {created.root} (token: {created.subject})")
    click.echo(f"next: flenwheel source add {project} PHOTOS...")
    if preset:
        atomic_write_text(turn_file, preset)
        click.echo(f"turn config for a {gpu} GB GPU: {turn_file}")
        click.echo(f"then: flenwheel run {project} --config {turn_file}")


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
