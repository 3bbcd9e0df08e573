"""``flenwheel items plan / save``: the native-graph bridge from the command line.

What FLENwheel Flywheel Items and Save Flywheel Images do in a graph, for any other renderer (a
script driving ComfyUI's API, another UI): ``plan`` prints the items still to make, ``save`` writes
rendered files back into the planned dataset with their lineage.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.data.errors import FlenwheelError
from ..core.data.images import load_image
from ..core.data.project import Project
from ..core.graph.items import STAGE_OF, plan_items
from ..core.graph.lineage import load_graph, read_lineage
from ..core.graph.save import save_items
from ..core.identity.gate import DEFAULT_TOLERANCE, GATE_MODES, resolve_gate


@click.group("items")
def items_group() -> None:
    """A step's plan as items for an outside renderer, and its images back into the flywheel."""


@items_group.command("plan")
@click.argument("project", type=click.Path(file_okay=False))
@click.option("--step", type=click.Choice(list(STAGE_OF)), required=True, help="Which step to plan.")
@click.option("--seed", default=0, show_default=True, help="Run seed; item seeds derive from it.")
@click.option("--per-source", default=4, show_default=True, help="enrich: edits per source photo.")
@click.option("--families", default="", help="Comma-separated template or prompt families (blank: all).")
@click.option("--variants", type=int, default=None, help="generate: images per prompt (default: the set's).")
@click.option("--tries", type=int, default=None, help="model_card: tries per cell (default: the card's).")
@click.option("--label", default="char_v1", show_default=True,
              help="model_card: the LoRA the card is for; generate: the LoRA rendering (its training set and "
              "newest card aim the plan).")
@click.option("--new-version", is_flag=True, help="Start a new dataset version.")
@click.option("--json", "as_json", is_flag=True, help="Print the items as JSON (id, prompt, seed, source).")
def plan_cmd(project: str, step: str, seed: int, per_source: int, families: str, variants: int | None,
             tries: int | None, label: str, new_version: bool, as_json: bool) -> None:
    """List the items still to make (queueing the same plan again lists only what is missing)."""
    names = tuple(n.strip() for n in families.split(",") if n.strip())
    plan = plan_items(Project.open(project), step, per_source=per_source, families=names, seed=seed,
                      variants=variants, tries=tries, label=label, new_version=new_version)
    if as_json:
        items = [{"id": i.id, "prompt": i.prompt, "seed": i.seed, "source": str(i.source) if i.source else None}
                 for i in plan.items]
        click.echo(json.dumps({"dataset": plan.dataset.label, "planned": plan.planned, "done": plan.done,
                               "items": items}, indent=2))
        return
    for line in plan.lines():
        click.echo(line)
    for item in plan.items:
        click.echo(f"{item.id}\tseed {item.seed}\t{item.prompt}")


@items_group.command("save")
@click.argument("project", type=click.Path(file_okay=False))
@click.argument("pairs", nargs=-1, required=True, metavar="ITEM_ID=IMAGE...")
@click.option("--graph", "graph_file", type=click.Path(dir_okay=False, exists=True),
              help="API-format workflow that made the images: its models and LoRAs go into the records.")
@click.option("--identity-gate", type=click.Choice(list(GATE_MODES)), default="off", show_default=True)
@click.option("--tolerance", default=DEFAULT_TOLERANCE, show_default=True)
@click.option("--max-retries", default=2, show_default=True, help="Retries of a drifted item before keeping it.")
def save_cmd(project: str, pairs: tuple[str, ...], graph_file: str | None, identity_gate: str, tolerance: float,
             max_retries: int) -> None:
    """Write rendered images into the planned dataset (nothing is written when one pair is wrong)."""
    opened = Project.open(project)
    ids, images = [], []
    for pair in pairs:
        item, sep, path = pair.partition("=")
        if not sep or not item:
            raise FlenwheelError(f"'{pair}' is not ITEM_ID=IMAGE")
        ids.append(item)
        images.append(load_image(Path(path)))
    graph = load_graph(graph_file) if graph_file else None
    result = save_items(opened, images, ids, lineage=read_lineage(graph), png_text={"prompt": graph} if graph else None,
                        scorer=resolve_gate(opened, identity_gate, tolerance), max_retries=max_retries,
                        node="flenwheel items save")
    for line in result.lines():
        click.echo(line)


def register(cli: click.Group) -> None:
    cli.add_command(items_group)
