"""``flenwheel tiny build DIR``: the offline random-weight pipelines used by tests and the demo."""

from __future__ import annotations

import click

from ..core.models.registry import accepted_names


@click.group("tiny")
def tiny_group() -> None:
    """Tiny random-weight models for offline tests and demos (outputs are noise)."""


@tiny_group.command("build")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--kind", type=click.Choice(["all", *accepted_names()]), default="all", show_default=True,
              help="Which model family's pipeline to build.")
def build_cmd(folder: str, kind: str) -> None:
    """Build tiny random-weight pipelines of every registered model family in diffusers layout under FOLDER."""
    from pathlib import Path

    from ..core.testing import tiny

    built = tiny.build_all(folder) if kind == "all" else {kind: tiny.build(kind, Path(folder) / f"tiny-{kind}")}
    for name, path in built.items():
        click.echo(f"{name:10s} {path}")


def register(cli: click.Group) -> None:
    cli.add_command(tiny_group)
