"""``flenwheel status PROJECT``: the turn, the stage it is in or waiting at, and what to do next."""

from __future__ import annotations

import click


@click.command("status")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option("--address", default="http://127.0.0.1:8189", show_default=True,
              help="The review page's address, for the link printed when a review waits.")
def status_cmd(project: str, address: str) -> None:
    """Print where the flywheel stands (read-only: loads no model, writes nothing)."""
    from ..core.data.project import Project
    from ..core.turn.status import status_lines

    for line in status_lines(Project.open(project), address.rstrip("/")):
        click.echo(line)


def register(cli: click.Group) -> None:
    cli.add_command(status_cmd)
