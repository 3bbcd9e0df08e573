"""``flenwheel train BASE --config CFG`` and ``flenwheel train init BASE PROJECT``.

BASE is any registered model family (``flenwheel models`` lists them); one subcommand is made per
family from its registry entry, so a new base model needs no new command here.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..core.models.registry import ModelFamily, accepted_names, families


@click.group("train")
def train_group() -> None:
    """Train LoRAs (steps 1.4, 1.8, 2.2); JSON-lines progress on stdout, logs on stderr."""


def _run(kind: str, config: str) -> None:
    from ..trainers.protocol import Reporter
    from ..trainers.run import protocol_stream, run_job

    status = run_job(kind, config, Reporter(stream=protocol_stream()))
    sys.stdout.flush()
    if status:
        raise SystemExit(status)


def _train_command(entry: ModelFamily, name: str) -> click.Command:
    """``flenwheel train NAME --config CFG`` for one family (``name`` is its name or an alias)."""
    what = "LoRA on triplets" if entry.trains_on_triplets else "character LoRA"

    @click.command(name, hidden=name != entry.name,
                   help=f"Train a {entry.title} {what}. Same as: python -m flenwheel.trainers {name} --config CFG.")
    @click.option("--config", "config", required=True, type=click.Path(dir_okay=False),
                  help=f"YAML config (write one with: flenwheel train init {name} PROJECT).")
    def command(config: str) -> None:
        _check_config(config, entry.name)
        _run(entry.name, config)

    return command


def _add_family_commands(group: click.Group) -> None:
    """One subcommand per family name; aliases work but stay out of ``--help``."""
    for entry in families():
        for name in entry.names():
            group.add_command(_train_command(entry, name))


_add_family_commands(train_group)


def _check_config(path: str, kind: str) -> None:
    """Config errors print as one line with exit status 1 before any event is written."""
    from ..trainers.config import load_config

    load_config(path, kind)


def overrides(
    model: str | None,
    steps: int | None,
    rank: int | None,
    resolution: int | None,
    learning_rate: float | None,
    settings: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Options that change the written config; ``--set key=value`` takes any config key (YAML value)."""
    import yaml

    out: dict[str, Any] = {
        "model": model,
        "max_train_steps": steps,
        "lora_rank": rank,
        "resolution": resolution,
        "learning_rate": learning_rate,
    }
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--set expects key=value, got '{item}'")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _config_option(flag: str, key: str, text: str) -> Any:
    """An option that sets one trainer-config key, typed as ``TrainConfig`` types it (unset: the default)."""
    from ..trainers.config import TrainConfig

    return click.option(flag, type=TrainConfig.model_fields[key].annotation, help=text)


PLAN_OPTIONS = (
    click.option("--model", help="Base model: diffusers folder or hub id (default: the family's hub id)."),
    _config_option("--steps", "max_train_steps", "max_train_steps."),
    _config_option("--rank", "lora_rank", "lora_rank."),
    _config_option("--resolution", "resolution", "Training resolution (bucket area = resolution²)."),
    _config_option("--learning-rate", "learning_rate", "learning_rate."),
    click.option(
        "--set",
        "settings",
        multiple=True,
        metavar="KEY=VALUE",
        help="Any other config key, e.g. --set mixed_precision=no (repeatable).",
    ),
)


def plan_options(func):
    """The options shared by ``train init`` and ``iterate``."""
    for option in reversed(PLAN_OPTIONS):
        func = option(func)
    return func


@train_group.command("init")
@click.argument("kind", type=click.Choice(accepted_names()))
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--version", help="LoRA version to prepare (default: the next one).")
@click.option("--triplets", help="Editors: triplets version (default: the latest data/qwen_training/vN).")
@plan_options
def init_cmd(kind: str, project: str, version: str | None, triplets: str | None, **options: Any) -> None:
    """Write a ready config (and, for a character base, the frozen training set) into the project's models/."""
    from ..core.data.project import Project
    from ..core.training.planning import init_run

    plan = init_run(Project.open(project), kind, version, triplets, overrides(**options))
    click.echo(plan.describe())
    click.echo(f"next: flenwheel train {plan.kind} --config {plan.config_path}")


def register(cli: click.Group) -> None:
    cli.add_command(train_group)
