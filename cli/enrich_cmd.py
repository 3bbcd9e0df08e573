"""``flenwheel enrich PROJECT``: step 1.2, edit each source 3-5 ways with Qwen-Image-Edit-2509."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from ..core.identity.gate import DEFAULT_TOLERANCE
from ..core.models.registry import QWEN_EDIT_2509
from ._memory import load_options, memory_options

if TYPE_CHECKING:
    from ..core.enrich.plan import EnrichPlan, EnrichSettings


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[list[bool]]:
    """First Ctrl-C finishes the image in flight and stops; a second one stops at once."""
    flag = [False]
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True
        click.secho("stopping after the current image (Ctrl-C again to stop now)", fg="yellow", err=True)

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (e.g. tests): keep the default behaviour
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _settings(opts: dict[str, Any]) -> EnrichSettings:
    from ..core.enrich.enrich import EnrichSettings

    if opts["reference"] and opts["reference_other_source"]:
        raise click.UsageError("use either --reference or --reference-other-source, not both")
    reference = "image" if opts["reference"] else "other_source" if opts["reference_other_source"] else "none"
    return EnrichSettings(
        per_source=opts["per_source"], families=opts["families"], seed=opts["seed"], steps=opts["steps"],
        true_cfg=opts["true_cfg"], negative_prompt=opts["negative_prompt"], width=opts["width"],
        height=opts["height"], pixels=opts["pixels"], vae_pixels=opts["vae_pixels"],
        condition_pixels=opts["condition_pixels"], max_retries=opts["retries"], reference=reference,
        skip_flagged=opts["skip_flagged"], template_files=opts["template_files"], aim=opts["aim"],
    )


def _print_dry_run(plan: EnrichPlan, seed: int, with_reference: bool) -> None:
    from ..core.enrich.qwen_edit import derive_seed

    for edit in plan.edits:
        record = plan.records[edit.source_index]
        prompt = plan.templates.prompt(edit.family, edit.value, with_reference)
        click.echo(f"{record.filename:28s} {edit.family:16s} {edit.value:15s} "
                   f"seed {derive_seed(seed, record.id, edit.slot):<10d} {prompt}")
    for line in plan.aim.lines() if plan.aim else ["view edits not aimed (--no-aim)"]:
        click.echo(line)
    click.echo(f"{len(plan.edits)} edits of {len(plan.records)} sources; "
               f"families: {', '.join(plan.families)}")


_CHOICE = {"show_default": True}


@click.command("enrich")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--model", default=QWEN_EDIT_2509.hub_id, **_CHOICE,
              help="Diffusers folder or hub id (gives VAE, text encoder, processor; and transformer).")
@click.option("--transformer-file", type=click.Path(dir_okay=False),
              help="Single-file transformer from ComfyUI's models/diffusion_models.")
@click.option("--lora", "loras", multiple=True, metavar="PATH[:STRENGTH]",
              help="LoRA to apply, e.g. Multiple-angles at 1.25, or the project's editor LoRA as ours:vN "
                   "(repeatable).")
@click.option("--per-source", default=4, **_CHOICE, help="Edits per source (the seed asks for 3-5).")
@click.option("--family", "families", multiple=True,
              help="Template family (repeatable; default: all, multiple_angles only with an angle LoRA).")
@click.option("--templates", "template_files", multiple=True, type=click.Path(dir_okay=False),
              help="YAML file with your own template families (repeatable).")
@click.option("--seed", default=0, **_CHOICE, help="Run seed; each edit's seed is derived from it.")
@click.option("--steps", default=40, **_CHOICE, help="Denoising steps per edit.")
@click.option("--true-cfg", default=4.0, **_CHOICE, help="True CFG scale (1 turns the negative prompt off).")
@click.option("--negative-prompt", default=" ", **_CHOICE, help="Negative prompt, used when true-cfg > 1.")
@click.option("--width", type=int, help="Output width (multiple of 16); default: source aspect, --pixels.")
@click.option("--height", type=int, help="Output height (multiple of 16); default: source aspect, --pixels.")
@click.option("--pixels", default=1024 * 1024, **_CHOICE, help="Output area when width/height are unset.")
@click.option("--vae-pixels", type=int, help="Input area for the VAE (diffusers default 1048576).")
@click.option("--condition-pixels", type=int, help="Input area for the vision encoder (default 147456).")
@memory_options("Qwen2.5-VL text encoder")
@click.option("--gate", type=click.Choice(["auto", "on", "off"]), default="auto", **_CHOICE,
              help="Identity gate; auto runs it when face_recognition is installed.")
@click.option("--tolerance", default=DEFAULT_TOLERANCE, **_CHOICE,
              help="Face distance up to which the identity is kept.")
@click.option("--retries", default=2, **_CHOICE, help="New seeds tried for a drifted edit before keeping it.")
@click.option("--reference", type=click.Path(dir_okay=False), help="Second view of the person (Picture 2).")
@click.option("--reference-other-source", is_flag=True,
              help="Use another source (a different angle when tagged) as Picture 2 for each source.")
@click.option("--source-version", help="Source dataset version (default: latest).")
@click.option("--version", help="Enriched version to write or resume (default: latest, same settings).")
@click.option("--new-version", is_flag=True, help="Always start a new enriched version.")
@click.option("--skip-flagged", is_flag=True, help="Leave out sources that failed the quality checks.")
@click.option("--aim/--no-aim", default=True, **_CHOICE,
              help="Give more view-changing edits to the views the sources lack (measured or tagged).")
@click.option("--dry-run", is_flag=True, help="Print the planned edits and prompts (and the aim); load no model.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def enrich_cmd(project: str, **opts: Any) -> None:
    """Edit every source photo with Qwen-Image-Edit-2509 into data/enriched/vN/, keeping the person.

    Rerunning the same command resumes an interrupted run. Ctrl-C stops after the current image.
    """
    from ..core.data.errors import FlenwheelError
    from ..core.data.handles import DatasetHandle
    from ..core.data.images import load_image
    from ..core.data.project import Project
    from ..core.enrich.enrich import enrich, make_plan
    from ..core.identity.gate import resolve_gate
    from ..core.models.editor_lora import resolve_lora
    from ..core.models.qwen_edit_loader import load_qwen_edit

    settings = _settings(opts)
    opened = Project.open(project)
    specs = [resolve_lora(text, opened) for text in opts["loras"]]
    source = DatasetHandle(opened.dataset("source", opts["source_version"]))
    if opts["dry_run"]:
        plan = make_plan(opened, settings, source, [spec.path for spec in specs], log=click.echo)
        _print_dry_run(plan, settings.seed, settings.reference != "none")
        return
    reference = load_image(opts["reference"]) if opts["reference"] else None
    scorer = resolve_gate(opened, opts["gate"], opts["tolerance"],
                          log=lambda text: click.secho(text, fg="yellow", err=True))
    handle = load_qwen_edit(opts["model"], opts["transformer_file"], load_options(opts), specs)
    click.echo(f"loaded {handle.describe()}" + (f" with {len(specs)} LoRA(s)" if specs else ""))
    with _graceful_interrupt() as stop:
        try:
            result = enrich(opened, handle, settings, scorer=scorer, source=source, reference_image=reference,
                            version=opts["version"], new_version=opts["new_version"],
                            should_stop=lambda: stop[0], log=click.echo)
        except KeyboardInterrupt:
            raise FlenwheelError("interrupted; every finished edit is saved: "
                                 "rerun the command to resume") from None
    if opts["as_json"]:
        report = {**result.summary.to_json(), "added": len(result.added), "resumed": result.resumed,
                  "stopped": result.stopped, "path": str(result.dataset.path)}
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"{len(result.added)} new edits, {result.resumed} already done -> {result.dataset.path}")
        for line in result.summary.lines():
            click.echo(line)
    if result.stopped:
        raise SystemExit(130)


def register(cli: click.Group) -> None:
    cli.add_command(enrich_cmd)
