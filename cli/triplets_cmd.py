"""``flenwheel triplets ...``: Flywheel 2, corrections -> (source, edit prompt, target) triplets (step 2.1)."""

from __future__ import annotations

import functools
import json
from typing import Any

import click

from ._memory import load_options, memory_options

_SHOW = {"show_default": True}


def qwen_model_options(func):
    """Model options shared by the commands that run Qwen-Image-Edit (re-runs, compare-editors)."""
    options = [
        click.option("--model", help="Diffusers folder or hub id (default: what the enriched version used)."),
        click.option("--transformer-file", type=click.Path(dir_okay=False),
                     help="Single-file transformer from ComfyUI's models/diffusion_models."),
        memory_options("Qwen2.5-VL text encoder"),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), func)


def load_base(opts: dict[str, Any], model: str, transformer_file: str | None, loras: list | tuple = ()):
    """Load Qwen-Image-Edit-2509 with the command's memory options."""
    from ..core.models.qwen_edit_loader import load_qwen_edit

    handle = load_qwen_edit(model, transformer_file, load_options(opts), list(loras))
    click.echo(f"loaded {handle.describe()}" + (f" with {len(loras)} LoRA(s)" if loras else ""))
    return handle


@click.group("triplets")
def triplets_group() -> None:
    """Turn edits reviewed as needs_correction into triplets for the editor LoRA (Flywheel 2)."""


_ENRICHED = click.option("--enriched", "enriched", help="Enriched version the corrections belong to "
                                                        "(default: the latest).")


def _open(project: str, enriched: str | None):
    from ..core.data.project import Project

    opened = Project.open(project)
    return opened, enriched or opened.dataset("enriched").version


@triplets_group.command("status")
@click.argument("project", type=click.Path(file_okay=False))
@_ENRICHED
def status_cmd(project: str, enriched: str | None) -> None:
    """List the corrections of an enriched version and where each one's target stands."""
    from ..core.editor.correction_targets import correction_items

    opened, version = _open(project, enriched)
    items, notes = correction_items(opened, version)
    for item in items:
        reason = item.decision.reason_text or "-"
        click.echo(f"{item.record.id[:12]}  {item.record.filename:40s} {item.target_state:18s} "
                   f"{item.reruns} re-runs ({item.pending_reruns} to review)  issue: {reason}")
    click.echo(f"{len(items)} corrections in enriched/{version}; "
               f"{sum(1 for i in items if i.target_state in ('manual fix', 'accepted re-run'))} have a target")
    for note in notes:
        click.secho(f"note: {note}", fg="yellow")


@triplets_group.command("fix")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("image")
@click.argument("fixed_file", type=click.Path(dir_okay=False, exists=True))
@_ENRICHED
def fix_cmd(project: str, image: str, fixed_file: str, enriched: str | None) -> None:
    """Use FIXED_FILE as the corrected target of IMAGE (id, id prefix or file name)."""
    from pathlib import Path

    from ..core.editor.correction_targets import find_record, store_fix

    opened, version = _open(project, enriched)
    record = find_record(opened.dataset("enriched", version), image)
    stored = store_fix(opened, version, record.id, Path(fixed_file), label=fixed_file)
    click.echo(f"stored enriched/{version}/{stored.relative} ({stored.width}x{stored.height})")
    for text in ([stored.note] if stored.note else []) + [f"kept the earlier fix {r} in .replaced/"
                                                           for r in stored.replaced]:
        click.secho(f"note: {text}", fg="yellow")


@triplets_group.command("rerun")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1)
@_ENRICHED
@click.option("--all", "every", is_flag=True, help="Every correction that has no target yet.")
@click.option("--prompt", help="Revised prompt; {prompt} stands for the original. Default: the original "
                               "plus what the review reason asks for.")
@click.option("--seeds", default=3, **_SHOW, help="New seeds to try per correction.")
@click.option("--seed", "seed_list", type=int, multiple=True, help="Exact seed(s) to use instead (repeatable).")
@click.option("--train-on", type=click.Choice(["original", "improved"]), default="original", **_SHOW,
              help="Which prompt becomes the triplet's caption if a re-run is accepted.")
@click.option("--lora", "loras", multiple=True, metavar="PATH[:S]|ours:vN",
              help="LoRAs for the re-run (default: the ones the failed edit used).")
@click.option("--steps", type=int, help="Denoising steps (default: the failed edit's).")
@click.option("--true-cfg", type=float, help="True CFG scale (default: the failed edit's).")
@click.option("--gate", type=click.Choice(["auto", "on", "off"]), default="auto", **_SHOW,
              help="Score each re-run's face against the character (shown in the review page).")
@qwen_model_options
def rerun_cmd(project: str, images: tuple[str, ...], enriched: str | None, every: bool, **opts: Any) -> None:
    """Re-run failed edits with an improved prompt and new seeds; review them in the 'rerun' review."""
    from ..core.data.errors import FlenwheelError
    from ..core.editor.correction_rerun import rerun_correction
    from ..core.editor.correction_targets import correction_items
    from ..core.identity.gate import resolve_gate
    from ..core.models.editor_lora import resolve_lora
    from ..core.models.loras import LoraSpec

    if every == bool(images):
        raise click.UsageError("name the edits to re-run, or pass --all (not both)")
    opened, version = _open(project, enriched)
    targets = list(images) or [i.record.id for i in correction_items(opened, version)[0]
                               if i.target_state in ("no target yet", "re-runs to review")]
    if not targets:
        raise FlenwheelError(f"every correction of enriched/{version} already has a target")
    info = opened.dataset("enriched", version).load().info
    loras = [resolve_lora(text, opened) for text in opts["loras"]] or [
        LoraSpec(ref["path"], ref["strength"]) for ref in info.get("loras", [])]
    model = opts["model"] or info.get("model_source")
    recorded = info.get("model") if info.get("model") != info.get("model_source") else None
    transformer = opts["transformer_file"] or recorded
    handle = load_base(opts, model, transformer, loras)
    scorer = resolve_gate(opened, opts["gate"], log=lambda text: click.secho(text, fg="yellow", err=True))
    seeds = list(opts["seed_list"]) or opts["seeds"]
    for target in targets:
        result = rerun_correction(opened, handle, version, target, opts["prompt"], seeds, opts["train_on"],
                                  {"steps": opts["steps"], "true_cfg": opts["true_cfg"]}, scorer, log=click.echo)
        click.echo(f"{result.failed.filename}: {len(result.added)} re-run(s) in {result.dataset.label} with "
                   f"prompt: {result.prompt}")
    click.echo(f"review them: flenwheel review serve {project} (dataset {opened.dataset('reruns', version).label}),"
               f" or flenwheel triplets accept {project} CANDIDATE")


@triplets_group.command("accept")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("candidates", nargs=-1, required=True)
@_ENRICHED
@click.option("--reject", is_flag=True, help="Reject the re-runs instead.")
@click.option("--reviewer", help="Your name, for the review log.")
def accept_cmd(project: str, candidates: tuple[str, ...], enriched: str | None, reject: bool,
               reviewer: str | None) -> None:
    """Accept re-runs (id, id prefix or file name) as corrected targets (a 'rerun' review decision)."""
    from ..core.editor.correction_rerun import review_rerun

    opened, version = _open(project, enriched)
    for candidate in candidates:
        record = review_rerun(opened, version, candidate, accept=not reject, reviewer=reviewer)
        click.echo(f"{record.filename}: {record.label}")


@triplets_group.command("build")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--version", help="Triplets version to write (default: the next data/qwen_training/vN).")
@click.option("--from", "sources", multiple=True, help="Enriched version(s) to take corrections from "
                                                       "(default: all).")
@click.option("--identity", type=click.Choice(["auto", "on", "off"]), default="auto", **_SHOW,
              help="Measure face distances of targets vs failed edits for the report.")
@click.option("--caption", type=click.Choice(["as_chosen", "original", "improved"]), default="as_chosen",
              **_SHOW, help="Caption of re-run targets: as chosen at re-run time, or force one.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--check", is_flag=True, help="Exit 1 when a step-2.1 criterion fails.")
def build_cmd(project: str, version: str | None, sources: tuple[str, ...], identity: str, caption: str,
              as_json: bool, check: bool) -> None:
    """Write data/qwen_training/vN/triplets.jsonl, the images, report.json and sheet.png."""
    from ..core.data.project import Project
    from ..core.editor.triplets import build_triplets

    result = build_triplets(Project.open(project), list(sources) or None, version, identity, caption)
    if as_json:
        click.echo(json.dumps({"dataset": result.dataset.label, "path": str(result.jsonl),
                               "up_to_date": result.up_to_date, "count": len(result.lines),
                               "report": result.report.to_json(), "skipped": result.skipped,
                               "waiting": result.waiting, "notes": result.notes}, indent=2))
    else:
        for line in result.summary():
            colour = "red" if line.startswith(("FAIL", "left out")) else "green" if line.startswith("PASS") else None
            click.secho(line, fg=colour)
        click.echo(f"triplets: {result.jsonl}")
    if check and not result.report.passed:
        raise SystemExit(1)


@triplets_group.command("check")
@click.argument("target", type=click.Path(exists=True))
@click.option("--version", help="Triplets version when TARGET is a project (default: the latest).")
def check_cmd(target: str, version: str | None) -> None:
    """Validate a triplets.jsonl (or a project's triplets version); exit 1 on any error."""
    from pathlib import Path

    from ..core.data.project import PROJECT_FILE, Project
    from ..core.editor.triplet_check import validate_triplets

    path = Path(target)
    if (path / PROJECT_FILE).is_file():
        path = Project.open(path).dataset("qwen_training", version).path
    result = validate_triplets(path)
    for line in result.lines():
        click.echo(line)
    if not result.ok:
        raise SystemExit(1)


@triplets_group.command("export")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["musubi", "aitoolkit"]), required=True,
              help="musubi-tuner JSONL + dataset TOML, or ai-toolkit control/ + target/ folders.")
@click.option("--version", help="Triplets version (default: the latest).")
@click.option("--out", type=click.Path(file_okay=False), help="Export folder (default: PROJECT/exports/...).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier export in --out.")
@click.option("--relative", is_flag=True, help="musubi: paths relative to the JSONL instead of absolute.")
def export_cmd(project: str, fmt: str, version: str | None, out: str | None, overwrite: bool,
               relative: bool) -> None:
    """Copy a triplets version into the layout musubi-tuner or ai-toolkit reads (checked by reading it back)."""
    from ..core.data.project import Project
    from ..core.editor.triplet_export import export_triplets

    result = export_triplets(Project.open(project), version, fmt, out, overwrite, relative)
    click.echo(f"{result.count} triplets exported to {result.folder} ({fmt}); config: {result.config}")


def register(cli: click.Group) -> None:
    cli.add_command(triplets_group)
