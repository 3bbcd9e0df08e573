"""``flenwheel benchmark run|report|compare``: the model card, its first-try success rate, v1 -> v2."""

from __future__ import annotations

import json
from typing import Any

import click

from .generate_cmd import load_model, model_options


@click.group("benchmark")
def benchmark_group() -> None:
    """The model card benchmark: 20 portraits + 3 poses, k tries each, automatic checks + human verdicts."""


def _card(card_files: tuple[str, ...], tries: int | None, base_seed: int | None, render: dict[str, Any]) -> Any:
    from ..core.benchmark.model_card import load_card

    return load_card(card_files, tries=tries, base_seed=base_seed,
                     render={k: v for k, v in render.items() if v is not None} or None)


def _print_outputs(outputs: Any, as_json: bool, run: Any = None) -> None:
    if as_json:
        extra = {"report": str(outputs.report_path), "card": str(outputs.card_path),
                 "results": str(outputs.results_path)}
        if run is not None:
            extra["run"] = {"dataset": run.dataset.label, "generated": run.generated, "reused": run.reused,
                            "scored": run.rescored, "seconds": round(run.seconds, 2)}
        click.echo(json.dumps(outputs.results["summary"] | extra, indent=2))
        return
    for line in outputs.lines():
        colour = "green" if "target" in line and ": met" in line else "red" if "NOT met" in line else None
        click.secho(line, fg=colour)


@benchmark_group.command("run")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--lora", "loras", multiple=True, required=True,
              help="The character LoRA: char_vN, latest or a .safetensors path, with :STRENGTH; repeat to stack.")
@click.option("--tries", type=click.IntRange(1, 32), help="Tries per cell, each with its own fixed seed (card: 4).")
@click.option("--card", "card_files", multiple=True, type=click.Path(dir_okay=False),
              help="YAML merged over the built-in card (core/benchmark/model_card.yaml); repeatable.")
@click.option("--checks", help="Comma list of checks to run (default: all of identity, one_face, resolution, "
                               "sharpness, head_angle, body_pose).")
@click.option("--seed", "base_seed", type=int, help="Base seed the tries' seeds derive from (card: 0).")
@click.option("--width", type=int, help="Override the card's width (below 1024 the resolution check fails).")
@click.option("--height", type=int, help="Override the card's height.")
@click.option("--steps", type=int, help="Override the card's denoising steps (28).")
@click.option("--guidance", type=float, help="Override the card's FLUX guidance (3.5).")
@click.option("--name", help="Benchmark folder name (default: the LoRA's version, e.g. char_v1).")
@click.option("--pose-python", help="Python of an environment with mediapipe 0.10.21 for the body pose check "
                                    "(default: $FLENWHEEL_POSE_PYTHON; without it pose is left to the human).")
@click.option("--source-version", help="Source dataset version for identity references and sharpness (latest).")
@click.option("--review", type=click.Choice(["pass-through", "wait"]), default="pass-through", show_default=True,
              help="wait: after generating, wait until the first tries have a verdict in the review page "
                   "(flenwheel review serve PROJECT); pass-through: use the verdicts already given.")
@click.option("--review-all-tries", is_flag=True, help="With --review wait, wait for every try, not only the first.")
@click.option("--timeout-minutes", type=float, default=0, show_default=True,
              help="How long --review wait waits (0: no limit); then the verdicts given so far are used.")
@click.option("--dry-run", is_flag=True, help="Print the cells, prompts and seeds, and exit without a model.")
@click.option("--check", is_flag=True, help="Exit 1 when the first-try target is not met (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@model_options
def run_cmd(project: str, loras: tuple[str, ...], tries: int | None, card_files: tuple[str, ...],
            checks: str | None, base_seed: int | None, width: int | None, height: int | None, steps: int | None,
            guidance: float | None, name: str | None, pose_python: str | None, source_version: str | None,
            review: str, review_all_tries: bool, timeout_minutes: float, dry_run: bool, check: bool,
            as_json: bool, **kw: Any) -> None:
    """Generate the model card with FLUX + the LoRA, check every image, write benchmarks/<lora>/.

    A rerun resumes: tries already generated are reused, so it also refreshes the report with new
    verdicts. Writes results.json, model_card.png and report.html.
    """
    from ..core.benchmark.checks import parse_checks
    from ..core.benchmark.results import write_outputs
    from ..core.benchmark.run import FluxRenderer, run_benchmark, verdict_scope
    from ..core.data.distributed import Processes
    from ..core.data.project import Project
    from ..core.models.character_lora import parse_lora_ref
    from ..core.review.gate import wait_for_review

    opened = Project.open(project)
    card = _card(card_files, tries, base_seed, {"width": width, "height": height, "steps": steps, "guidance": guidance})
    specs = [parse_lora_ref(text, opened) for text in loras]
    selected = parse_checks(checks)
    if dry_run:
        for cell in card.cells(opened.subject, opened.token):
            click.echo(f"{cell.id:24s} seeds {', '.join(map(str, cell.seeds))}  {cell.prompt}")
        click.echo(f"{card.tries} tries x {len(card.cells(opened.subject, opened.token))} cells; checks: "
                   f"{', '.join(selected)}; LoRAs: {', '.join(s.path for s in specs)}")
        return
    handle = load_model(kw).with_loras(specs)

    from ..core.benchmark.results import check_line

    def show(done: int, total: int, image: Any, record: Any) -> None:
        if not as_json:
            click.echo(f"[{done}/{total}] {record.filename}: {check_line(record.scores['benchmark']['checks'])}")

    run = run_benchmark(opened, FluxRenderer(handle), card, checks=selected, label=name, pose_python=pose_python,
                        source_version=source_version, on_image=show)
    if not Processes.current().is_main:
        return  # under a launcher, the main process waits for verdicts and writes the card
    if not as_json:
        click.echo("\n".join(run.lines()))
    if review == "wait":
        scope = verdict_scope(run, review_all_tries)
        click.echo(f"waiting for verdicts on {len(scope.ids)} images of {run.dataset.label}: open "
                   f"flenwheel review serve {project} (Ctrl-C stops; verdicts stay saved)")
        wait_for_review(scope, timeout_minutes * 60.0, "pass_decided")
    outputs = write_outputs(opened, run.label, run.dataset)
    _print_outputs(outputs, as_json, run)
    if check and not outputs.results["summary"]["target_met"]:
        raise SystemExit(1)


@benchmark_group.command("report")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("version")
@click.option("--check", is_flag=True, help="Exit 1 when the first-try target is not met (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def report_cmd(project: str, version: str, check: bool, as_json: bool) -> None:
    """Rewrite benchmarks/<version>/ from the stored images, checks and the latest verdicts (no model).

    VERSION is char_v1 (or v1). Run it after reviewing the card's images.
    """
    from ..core.benchmark.results import write_outputs
    from ..core.data.project import Project

    outputs = write_outputs(Project.open(project), version)
    _print_outputs(outputs, as_json)
    if check and not outputs.results["summary"]["target_met"]:
        raise SystemExit(1)


@benchmark_group.command("compare")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("first")
@click.argument("second")
@click.option("--json", "as_json", is_flag=True, help="Print the per-cell comparison as JSON.")
def compare_cmd(project: str, first: str, second: str, as_json: bool) -> None:
    """Compare two model cards (e.g. v1 v2): per-cell change and net gain, as HTML and PNG.

    Writes PROJECT/benchmarks/compare_<first>_<second>.html and .png.
    """
    from ..core.benchmark.compare import write_comparison
    from ..core.data.project import Project

    html_path, png_path, data = write_comparison(Project.open(project), first, second)
    if as_json:
        click.echo(json.dumps(data | {"html": str(html_path), "png": str(png_path)}, indent=2))
        return
    a, b = data["versions"]
    click.secho(f"{a} -> {b}: first try {data['first_try_rate'][0]:.0%} -> {data['first_try_rate'][1]:.0%}, "
                f"net gain {data['net_gain']:+d} cells ({data['gained']} gained, {data['lost']} lost)",
                fg="green" if data["improved"] else "red")
    for row in data["cells"]:
        if row["change"] in ("gained", "lost"):
            click.echo(f"  {row['change']:6s} {row['label']}")
    for warning in data["warnings"]:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"html: {html_path}\npng:  {png_path}")


@benchmark_group.command("score")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--cell", "cell_id", required=True, help="The card cell to check against, e.g. profile-left-neutral, "
              "front-smiling, sitting (flenwheel benchmark run --dry-run lists them).")
@click.option("--card", "card_files", multiple=True, type=click.Path(dir_okay=False),
              help="YAML merged over the built-in card (repeatable).")
@click.option("--checks", help="Comma list of checks to run (default: all).")
@click.option("--pose-python", help="Python of an environment with mediapipe 0.10.21 for the body pose check.")
@click.option("--json", "as_json", is_flag=True, help="Print every image's checks and readings as JSON.")
def score_cmd(project: str, images: tuple[str, ...], cell_id: str, card_files: tuple[str, ...], checks: str | None,
              pose_python: str | None, as_json: bool) -> None:
    """Check IMAGES against one card cell, exactly as the card would record them (no model, no files written).

    Prints every check (pass, fail, not measured, n/a) with what it measured, and the outcome by the
    card's rule without a person's verdict: success only when every criterion was verified automatically.
    """
    from ..core.benchmark.score_photos import score_files
    from ..core.data.project import Project

    rows = score_files(Project.open(project), _card(card_files, None, None, {}), images, cell_id, checks, pose_python)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['file']} [{row['cell']}]: {row['outcome']}")
        if "error" in row:
            click.echo(f"  {row['error']}")
            continue
        for name, check in row["checks"].items():
            if check["detail"] != "not a check of this cell":
                value = "" if check["value"] is None or isinstance(check["value"], dict) else f" {check['value']}"
                said = check["detail"] or ""
                said = said if said.startswith(check["status"]) else f"{check['status']}{value}: {said}".rstrip(": ")
                click.echo(f"  {name:11s} {said}")


def register(cli: click.Group) -> None:
    cli.add_command(benchmark_group)
