"""``flenwheel models``: the registered base-model families, their role, default hub id and memory."""

from __future__ import annotations

import click


@click.command("models")
def models_cmd() -> None:
    """List the model families every command, node and turn config accepts (sizes worked out from weights)."""
    from ..core.models.registry import families

    for entry in families():
        aliases = f" (also {', '.join(entry.aliases)})" if entry.aliases else ""
        click.echo(f"{entry.name}{aliases}: {entry.title}, {entry.role} base, default {entry.hub_id}")
        click.echo(f"  {entry.memory.row()}")
        for card, advice in entry.memory.cards:
            click.echo(f"  {card}: {advice}")


def register(cli: click.Group) -> None:
    cli.add_command(models_cmd)
