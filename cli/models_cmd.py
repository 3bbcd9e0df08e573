"""``flenwheel models``: the registered base-model families, read from the registry."""

from __future__ import annotations

import json

import click

from ..core.models.registry import ROLES, families


@click.command("models")
@click.option("--role", type=click.Choice(ROLES), help="Only the character bases or only the editors.")
@click.option("--json", "as_json", is_flag=True, help="Print the families as JSON.")
def models_cmd(role: str | None, as_json: bool) -> None:
    """List the model families: name (and aliases), role, default hub id and memory row.

    Each name works wherever a base model is chosen: flenwheel train NAME, flenwheel train init NAME
    PROJECT, python -m flenwheel.trainers NAME, a turn config's models.character_base / models.editor.
    """
    found = families(role)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([{
            "name": entry.name, "aliases": list(entry.aliases), "title": entry.title, "role": entry.role,
            "hub_id": entry.hub_id, "alias_hub_ids": dict(entry.alias_hub_ids), "memory": entry.memory.row(),
            "cards": dict(entry.memory.cards),
        } for entry in found], indent=2))
        return
    for entry in found:
        aliases = f" (also: {', '.join(entry.aliases)})" if entry.aliases else ""
        click.echo(f"{entry.name}{aliases}: {entry.title}, {entry.role}")
        click.echo(f"  hub id: {entry.hub_id}")
        for alias, hub_id in entry.alias_hub_ids:
            click.echo(f"  {alias} generates with: {hub_id} (LoRAs still train on {entry.hub_id})")
        click.echo(f"  memory: {entry.memory.row()} (worked out from weight sizes, not measured)")
        for card, advice in entry.memory.cards:
            click.echo(f"    {card:>8}: {advice}")


def register(cli: click.Group) -> None:
    cli.add_command(models_cmd)
