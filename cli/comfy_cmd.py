"""``flenwheel comfy run|check|convert``: script saved workflows through a running ComfyUI.

``run`` exit codes are part of the product API: 0 success, 1 execution error (the node and the
message are printed), 2 rejected prompt (ComfyUI's validation errors are printed; also a workflow
file or --set that cannot be used), 3 timeout, 4 ComfyUI unreachable.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from ..comfy_tools.client import ComfyClient, RunResult, RunStatus, rejection_message, run_prompt
from ..comfy_tools.display import RunDisplay, describe_outputs
from ..comfy_tools.node_specs import known_specs, specs_from_object_info
from ..comfy_tools.prompt_overrides import apply_overrides
from ..comfy_tools.workflow_check import check_file, check_folder
from ..comfy_tools.workflow_format import load_workflow, ui_to_api, workflow_kind
from ..core.data.atomic import atomic_write_text
from ..core.data.errors import FlenwheelError

DEFAULT_SERVER = "http://127.0.0.1:8188"
PACK_WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


@click.group("comfy")
def comfy_group() -> None:
    """Run, check and convert ComfyUI workflows (the pack's templates or your own)."""


@comfy_group.command("run")
@click.argument("workflow", type=click.Path(dir_okay=False))
@click.option(
    "--server",
    default=DEFAULT_SERVER,
    show_default=True,
    envvar="COMFYUI_SERVER",
    help="ComfyUI address (or set COMFYUI_SERVER).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="NODE_TITLE.input=value",
    help="Change a widget value before queueing; repeatable. A node id works in place of the title.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Follow the run to its end with a progress bar and print the outputs "
    "(without it the prompt is queued and the command returns).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Give up after this many seconds (exit 3); the prompt keeps running in ComfyUI.",
)
@click.option(
    "--download",
    "download_to",
    type=click.Path(file_okay=False),
    help="Save the output images into this folder (implies --wait).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option(
    "--traceback", "show_traceback", is_flag=True, help="On an execution error, print ComfyUI's traceback."
)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    workflow: str,
    server: str,
    assignments: tuple[str, ...],
    wait: bool,
    timeout: float | None,
    download_to: str | None,
    as_json: bool,
    quiet: bool,
    show_traceback: bool,
) -> None:
    """Queue WORKFLOW (API format, or a saved UI workflow, converted with the server's node list)."""
    try:
        data = load_workflow(workflow)
    except FlenwheelError as exc:
        finish(ctx, RunResult(RunStatus.REJECTED, str(exc)), {}, as_json, show_traceback)
    wait = wait or download_to is not None
    shown: dict[str, Any] = {}

    async def build(client: ComfyClient) -> dict[str, Any]:
        prompt = data
        if workflow_kind(data) == "ui":
            prompt = ui_to_api(data, specs_from_object_info(await client.object_info()))
        shown.update(apply_overrides(prompt, assignments))
        if not quiet:
            click.echo(f"queueing {Path(workflow).name} ({len(shown)} nodes) on {server}", err=True)
        return shown

    display = None if quiet else RunDisplay(shown)
    result = asyncio.run(
        run_prompt(
            server,
            build,
            wait=wait,
            timeout=timeout,
            on_event=display,
            download_to=Path(download_to) if download_to else None,
        )
    )
    finish(ctx, result, shown, as_json, show_traceback)


def finish(
    ctx: click.Context, result: RunResult, prompt: dict[str, Any], as_json: bool, show_traceback: bool
) -> None:
    """Report the result (stdout: outputs or JSON; stderr: problems) and exit with its status code."""
    skipped = result.details.get("node_errors")
    if skipped and not as_json and result.status != RunStatus.REJECTED:
        click.secho("ComfyUI skips the outputs that depend on these invalid inputs:", fg="yellow", err=True)
        for line in rejection_message({"node_errors": skipped}, prompt).splitlines()[1:]:
            click.secho(line, fg="yellow", err=True)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    elif result.status == RunStatus.SUCCESS:
        click.echo(result.message)
        for line in describe_outputs(result, prompt):
            click.echo(line)
    else:
        for line in describe_outputs(result, prompt) if result.outputs else ():  # what did run, when some was skipped
            click.echo(line)
        click.secho(f"{result.status.name.lower().replace('_', ' ')}: {result.message}", fg="red", err=True)
        trace = result.details.get("traceback")
        if trace and show_traceback:
            click.echo("".join(trace).rstrip(), err=True)
        elif trace:
            click.echo("(run with --traceback to see ComfyUI's traceback)", err=True)
    ctx.exit(int(result.status))


@comfy_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--server",
    help="Check against this ComfyUI's node list (/object_info) instead of the built-in "
    "one, e.g. when the workflow uses other packs' nodes.",
)
def check_cmd(paths: tuple[str, ...], server: str | None) -> None:
    """Validate workflows (files, or folders holding UI workflows and api/ twins); default: the pack's own.

    Checks node types, widget values (type, range, choices), required inputs, link types and that
    each UI workflow and its API twin describe the same graph. Exit 1 when anything is wrong.
    """
    specs = specs_from_object_info(asyncio.run(_object_info(server))) if server else known_specs()
    report: dict[str, list] = {}
    for path in map(Path, paths or [PACK_WORKFLOWS]):
        if path.is_dir():
            found_here = check_folder(path, specs)
            if not found_here:
                raise click.ClickException(f"{path} holds no workflow (no .json files, nor an api/ folder of them); "
                                           "name a workflow file or the folder that holds them")
            report.update({f"{path}/{name}": found for name, found in found_here.items()})
        else:
            report[str(path)] = check_file(path, specs)
    bad = {name: found for name, found in report.items() if found}
    for name, found in report.items():
        click.echo(f"{'FAIL' if found else 'ok  '} {name}")
        for problem in found:
            click.echo(f"     {problem}")
    click.echo(f"{len(report)} workflow(s) checked, {len(bad)} with problems")
    if bad:
        click.get_current_context().exit(1)


async def _object_info(server: str) -> dict[str, Any]:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session:
            return await ComfyClient(server, session).object_info()
    except (aiohttp.ClientError, OSError) as exc:
        raise FlenwheelError(f"cannot read the node list from {server}: {exc}") from None


@comfy_group.command("convert")
@click.argument("workflows", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Where the API files go (default: an api/ folder beside each workflow).",
)
def convert_cmd(workflows: tuple[str, ...], out_dir: str | None) -> None:
    """Write the API-format twin of each UI workflow, as ComfyUI's 'Export (API)' would."""
    specs = known_specs()
    for name in map(Path, workflows):
        data = load_workflow(name)
        if workflow_kind(data) != "ui":
            raise FlenwheelError(f"{name} is already in API format")
        target = Path(out_dir) / name.name if out_dir else name.parent / "api" / name.name
        text = json.dumps(ui_to_api(data, specs), indent=2, ensure_ascii=False) + "\n"
        before = target.read_text(encoding="utf-8") if target.exists() else None
        if before != text:
            atomic_write_text(target, text)
        click.echo(f"{'unchanged' if before == text else 'updated' if before else 'wrote'} {target}")
        for problem in check_file(name, specs):
            click.secho(f"  {problem}", fg="yellow")


def register(cli: click.Group) -> None:
    cli.add_command(comfy_group)
