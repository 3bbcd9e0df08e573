"""``flenwheel tiny build DIR``: the offline random-weight pipelines used by tests and the demo."""

from __future__ import annotations

import click

from ..core.testing.tiny import KINDS


@click.group("tiny")
def tiny_group() -> None:
    """Tiny random-weight models for offline tests and demos (outputs are noise)."""


@tiny_group.command("build")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--kind", type=click.Choice(["all", *KINDS]), default="all", show_default=True,
              help="Which pipeline to build.")
def build_cmd(folder: str, kind: str) -> None:
    """Build tiny FLUX.1, FLUX.2 [klein], Qwen-Image-Edit-2509/-2511 pipelines (diffusers layout) in FOLDER."""
    from pathlib import Path

    from ..core.testing import tiny

    built = tiny.build_all(folder) if kind == "all" else {kind: tiny.build(kind, Path(folder) / f"tiny-{kind}")}
    for name, path in built.items():
        click.echo(f"{name:15s} {path}")


def register(cli: click.Group) -> None:
    cli.add_command(tiny_group)
