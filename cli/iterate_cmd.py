"""``flenwheel iterate PROJECT``: step 1.8, prepare the next FLUX LoRA version from the reviewed data."""

from __future__ import annotations

from typing import Any

import click

from .train_cmd import overrides, plan_options


@click.command("iterate")
@click.argument("project", type=click.Path(file_okay=False))
@plan_options
def iterate_cmd(project: str, **options: Any) -> None:
    """Step 1.8: build the next FLUX training set (sources + enriched good + pristine) and its config."""
    from ..core.data.project import Project
    from ..core.training.planning import iterate

    plan = iterate(Project.open(project), overrides(**options))
    click.echo(plan.describe())
    click.echo(f"next: flenwheel train flux --config {plan.config_path}")


def register(cli: click.Group) -> None:
    cli.add_command(iterate_cmd)
