"""``flenwheel run PROJECT --config turn.yaml``: turns of both flywheels until the stop rule holds, headless."""

from __future__ import annotations

import json
import sys

import click

from ._presets import preset_options


@click.command("run")
@click.argument("project", type=click.Path(file_okay=False), required=False)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Turn settings (YAML); see --print-config for every key and its default.")
@click.option("--decisions", type=click.Path(dir_okay=False),
              help="Review decisions file (YAML/JSON); sets review.mode to file.")
@click.option("--auto-review", is_flag=True,
              help="Let a fixed rule make every review decision. For demos and tests only: reports say so.")
@click.option("--max-turns", type=click.IntRange(min=1),
              help="Stop after this many turns in all (overrides stop.max_turns).")
@click.option("--print-config", is_flag=True,
              help="Print the default turn config (with --gpu N: that card's preset) and exit; needs no PROJECT.")
@click.option("--threads", type=click.IntRange(min=1),
              help="torch CPU threads (default: torch's own). 1 is what the demo uses: several times faster "
              "for tiny models on a small CPU.")
@click.option("--progress/--no-progress", default=None,
              help="diffusers' per-image progress bars (default: shown on a terminal only); --no-progress also "
              "hides the model libraries' warnings, as the demo does.")
@click.option("--json", "as_json", is_flag=True, help="Print the flywheel run (turns, stop reason, files) as JSON.")
@preset_options
def run_cmd(project: str | None, config_path: str | None, decisions: str | None, auto_review: bool,
            max_turns: int | None, print_config: bool, threads: int | None, progress: bool | None,
            as_json: bool, gpu: str | None, character_base: str | None,
            editor: str | None) -> None:
    """Turn after turn of both flywheels until the model card passes (or going on cannot help).

    A turn: curate (first turn), enrich with the current editor, review, train char_vN, generate,
    filter, review, model card; then corrections, re-runs, triplets, the editor LoRA and the editor
    comparison whose winner enriches the next turn. It stops when the verified first-try success
    reaches the target, at max_turns, on a plateau, or when no pristine image was picked, and
    says why. Every stage resumes, so running the same command again continues where it stopped.
    Reviews wait for you in the review page (served while waiting), or come from --decisions.
    """
    from ..core.data.project import Project
    from ..core.turn.config import default_config_text, load_turn_config
    from ..core.turn.console import quiet_model_libraries, torch_threads
    from ..core.turn.loop import run_flywheel
    from ..core.turn.presets import preset_yaml

    if print_config:
        click.echo(preset_yaml(int(gpu), character_base, editor) if gpu else default_config_text(), nl=False)
        return
    if gpu or character_base or editor:
        raise click.UsageError("--gpu, --character-base and --editor go with --print-config")
    if project is None:
        raise click.UsageError("Missing argument 'PROJECT'.")
    config = load_turn_config(config_path)
    if decisions:
        config.review.mode, config.review.decisions = "file", decisions
    opened = Project.open(project)
    bars = not (sys.stderr.isatty() if progress is None else progress)  # off a terminal, bars only clutter logs
    with torch_threads(threads), quiet_model_libraries(bars=bars, warnings=progress is False):
        run = run_flywheel(opened, config, auto=auto_review, log=click.echo, max_turns=max_turns)
    if as_json:
        click.echo(json.dumps({"stop_reason": run.stop_reason, "seconds": round(run.seconds, 1), "files": run.files,
                               "turns": [turn.to_json() for turn in run.turns]}, indent=2))
        return
    click.echo(f"{len(run.turns)} turns run in {run.seconds:.0f} s; stopped: {run.stop_reason}")
    for name, path in {**{k: v for t in run.turns for k, v in t.reports.items()}, **run.files}.items():
        click.echo(f"  {name}: {path}")


def register(cli: click.Group) -> None:
    cli.add_command(run_cmd)
