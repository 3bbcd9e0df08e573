"""``flenwheel compare-editors PROJECT --editors base,dx8152:PATH,ours:vN`` (seed step 2.3)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.models.registry import QWEN_EDIT_2509
from .triplets_cmd import load_base, qwen_model_options

_SHOW = {"show_default": True}


@click.command("compare-editors")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--editors", "editors", multiple=True, metavar="LIST",
              help="Comma-separated editors: base, NAME:PATH[:STRENGTH], ours:vN[:STRENGTH]; join LoRAs with +.")
@click.option("--name", help="Comparison name (default: a new one; give an earlier name to resume or report it).")
@click.option("--report", "report_only", is_flag=True,
              help="Only report (after reviewing the versions); loads no model.")
@click.option("--per-source", default=4, **_SHOW, help="Edits per source.")
@click.option("--family", "families", multiple=True, help="Template families (default: all that fit the LoRAs).")
@click.option("--seed", default=0, **_SHOW, help="Run seed; every editor gets the same derived seeds.")
@click.option("--steps", default=40, **_SHOW, help="Denoising steps per edit.")
@click.option("--true-cfg", default=4.0, **_SHOW, help="True CFG scale.")
@click.option("--width", type=int, help="Output width (multiple of 16).")
@click.option("--height", type=int, help="Output height (multiple of 16).")
@click.option("--pixels", default=1024 * 1024, **_SHOW, help="Output area when width/height are unset.")
@click.option("--vae-pixels", type=int, help="Input area for the VAE.")
@click.option("--condition-pixels", type=int, help="Input area for the vision encoder.")
@click.option("--identity", type=click.Choice(["auto", "on", "off"]), default="auto", **_SHOW,
              help="Score faces against the character (scores only: no retries, for a fair comparison).")
@click.option("--source-version", help="Source dataset version (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@qwen_model_options
def compare_editors_cmd(project: str, editors: tuple[str, ...], name: str | None, report_only: bool,
                        **opts: Any) -> None:
    """Run the same sources, templates and seeds through each editor into separate enriched versions,
    then (after review) report per editor the needs_correction, reject and keep rates and the identity
    distance, as a table and a bar chart (benchmarks/editors/NAME/).

    Review the versions in the review page, then run the command again with --report (or the same
    command: edits already made are skipped).
    """
    from ..core.data.handles import DatasetHandle
    from ..core.data.project import Project
    from ..core.editor.editor_compare import parse_editors, run_comparison
    from ..core.editor.editor_report import editor_report
    from ..core.enrich.plan import EnrichSettings
    from ..core.identity.gate import resolve_gate

    opened = Project.open(project)
    if not report_only:
        if not editors:
            raise click.UsageError("give --editors (e.g. base,ours:v1), or --report to report an earlier run")
        chosen = parse_editors(editors, opened)
        settings = EnrichSettings(
            per_source=opts["per_source"], families=tuple(opts["families"]), seed=opts["seed"], steps=opts["steps"],
            true_cfg=opts["true_cfg"], width=opts["width"], height=opts["height"], pixels=opts["pixels"],
            vae_pixels=opts["vae_pixels"], condition_pixels=opts["condition_pixels"], max_retries=0,
        )
        settings.validate()
        base = load_base(opts, opts["model"] or QWEN_EDIT_2509.hub_id, opts["transformer_file"])
        scorer = resolve_gate(opened, opts["identity"], log=lambda text: click.secho(text, fg="yellow", err=True))
        run = run_comparison(opened, base, chosen, settings, name, DatasetHandle(
            opened.dataset("source", opts["source_version"])), scorer, log=click.echo)
        name = run.name
        for label, result in run.results.items():
            click.echo(f"{label}: {result.dataset.label} ({len(result.added)} new, {result.resumed} already done)")
    report = editor_report(opened, name, opts["identity"])
    if opts["as_json"]:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    for line in report.lines():
        click.secho(line, fg="green" if line.startswith("PASS") else "red" if line.startswith("FAIL") else None)
    pending = sum(s.edits - s.reviewed for s in report.editors)
    if pending:
        click.echo(f"{pending} edits are not reviewed yet: flenwheel review serve {project}, then "
                   f"flenwheel compare-editors {project} --report --name {report.name}")


def register(cli: click.Group) -> None:
    cli.add_command(compare_editors_cmd)
