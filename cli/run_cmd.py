"""``flenwheel run PROJECT --config turn.yaml``: one whole flywheel turn, headless."""

from __future__ import annotations

import json

import click


@click.command("run")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Turn settings (YAML); see --print-config for every key and its default.")
@click.option("--decisions", type=click.Path(dir_okay=False),
              help="Review decisions file (YAML/JSON); sets review.mode to file.")
@click.option("--auto-review", is_flag=True,
              help="Let a fixed rule make every review decision. For demos and tests only: reports say so.")
@click.option("--print-config", is_flag=True, help="Print the default turn config and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the turn report as JSON.")
def run_cmd(project: str, config_path: str | None, decisions: str | None, auto_review: bool,
            print_config: bool, as_json: bool) -> None:
    """Curate, enrich, review, train, generate, filter, review, iterate and benchmark in one go.

    Every stage resumes, so running the same command again continues an interrupted turn; with a
    finished LoRA it starts the next turn from it. Reviews wait for you in the review page
    (served while waiting), or come from --decisions.
    """
    from ..core.data.project import Project
    from ..core.turn.config import default_config_text, load_turn_config
    from ..core.turn.turn import run_turn

    if print_config:
        click.echo(default_config_text(), nl=False)
        return
    config = load_turn_config(config_path)
    if decisions:
        config.review.mode, config.review.decisions = "file", decisions
    report = run_turn(Project.open(project), config, auto=auto_review, log=click.echo)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    click.echo(f"turn finished in {report.seconds:.0f} s")
    for name, path in report.reports.items():
        click.echo(f"  {name}: {path}")


def register(cli: click.Group) -> None:
    cli.add_command(run_cmd)
