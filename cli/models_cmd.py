"""``flenwheel models``: the registered base-model families, read from the registry."""

from __future__ import annotations

import json

import click

from ..core.models.registry import ROLES, CardPreset, families


def _card_text(row: CardPreset) -> str:
    """One card's row: load options, then the trainer's (or that training does not fit)."""
    load = ", ".join(f"{key} {value}" for key, value in row.load.options().items())
    train = ", ".join(f"{key} {value}" for key, value in row.train.options().items()) if row.train else "does not fit"
    return f"load: {load}; train: {train}"


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
            "cards": {f"{row.gpu_gb} GB": _card_text(row) for row in entry.memory.presets},
        } for entry in found], indent=2))
        return
    for entry in found:
        aliases = f" (also: {', '.join(entry.aliases)})" if entry.aliases else ""
        click.echo(f"{entry.name}{aliases}: {entry.title}, {entry.role}")
        click.echo(f"  hub id: {entry.hub_id}")
        for alias, hub_id in entry.alias_hub_ids:
            click.echo(f"  {alias} generates with: {hub_id} (LoRAs still train on {entry.hub_id})")
        click.echo(f"  memory: {entry.memory.row()} (presets per card: estimates from weight sizes)")
        for row in entry.memory.presets:
            click.echo(f"    {row.gpu_gb:>3} GB: {_card_text(row)}")


def register(cli: click.Group) -> None:
    cli.add_command(models_cmd)
