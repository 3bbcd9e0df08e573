"""``flenwheel demo OUT``: the offline quick start."""

from __future__ import annotations

import click


@click.command("demo")
@click.argument("out", type=click.Path(file_okay=False))
def demo_cmd(out: str) -> None:
    """Run the flywheel offline on bundled photos and tiny random models (outputs are noise)."""
    from ..core.turn.demo import run_demo

    run_demo(out, log=click.echo)


def register(cli: click.Group) -> None:
    cli.add_command(demo_cmd)
