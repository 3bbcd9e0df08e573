"""``flenwheel demo OUT``: the offline quick start."""

from __future__ import annotations

import click


@click.command("demo")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--photos", type=click.Path(file_okay=False), default=None,
              help="A folder of your own 10-20 photos of one person (default: a photo matplotlib ships).")
def demo_cmd(out: str, photos: str | None) -> None:
    """Run two whole turns offline on tiny random models (outputs are noise), on a packaged photo or yours."""
    from ..core.turn.demo import run_demo

    run_demo(out, log=click.echo, photos=photos)


def register(cli: click.Group) -> None:
    cli.add_command(demo_cmd)
