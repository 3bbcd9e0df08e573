"""Images made by a native graph back into the flywheel: each planned item into its dataset version.

``save_items`` takes the images a graph rendered with the item ids ``items.plan_items`` handed
out, and writes each into the version the id names, with the record the plan prepared (parents,
caption, tags), the graph's lineage (``lineage.read_lineage``: base model, LoRAs, sampler), the
item's prompt and seed, and the graph itself in the PNG. So review, the identity filter,
training, the model card and the loop read these datasets exactly like the engine's own.

Everything is checked before anything is written: an id the plan does not hold, images and ids
that do not pair up, an id given twice, a finished version, a graph whose models differ from
the ones the version was started with, or a model card whose label names another character LoRA
than the graph loads is refused with an error naming the node. An item already
on disk is skipped (a re-queued graph never writes one twice). With an identity scorer, a drifted
image is not kept while retries remain: its attempt is counted in the version's info and the
items node plans it again with a new seed; the last attempt is kept marked ``drifted``. Benchmark
images are scored with the card's checks, and results.json, the card and the report are rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..benchmark.checks import CardScorer
from ..benchmark.model_card import Cell, load_card
from ..benchmark.results import write_outputs
from ..benchmark.run import store_scores
from ..data.dataset import DatasetVersion, DuplicateImageError
from ..data.errors import FlenwheelError
from ..data.project import Project
from ..data.records import ImageRecord
from ..identity.gate import IdentityGate
from .items import ENGINE, attempt_seed, done_keys, parse_item_id
from .lineage import GraphLineage


@dataclass
class SaveResult:
    """What one save did, for the node's summary and for tests."""

    dataset: DatasetVersion
    saved: list[ImageRecord] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"{self.dataset.label}: {len(self.saved)} saved, {len(self.already)} already there"]
        if self.duplicates:
            lines.append(f"{len(self.duplicates)} skipped as duplicates of other items: {', '.join(self.duplicates)}")
        if self.retry:
            lines.append(f"{len(self.retry)} drifted, queue again to retry with new seeds: {', '.join(self.retry)}")
        if self.drifted:
            lines.append(f"{len(self.drifted)} kept marked drifted (no retries left): {', '.join(self.drifted)}")
        return lines + self.outputs


def _refuse(node: str, message: str) -> FlenwheelError:
    return FlenwheelError(f"{node}: {message}; nothing was written")


def _target(project: Project, item_ids: Sequence[str], count: int, node: str) -> tuple[DatasetVersion, list[str]]:
    """The one dataset all ids belong to and their keys, or an error before anything is written."""
    if not item_ids:
        raise _refuse(node, "no item ids were given; connect the item_id output of FLENwheel Flywheel Items")
    if count != len(item_ids):
        raise _refuse(node, f"{count} image(s) for {len(item_ids)} item id(s); give one image per item "
                            "(an IMAGE batch counts one image per picture in it)")
    try:
        parsed = [parse_item_id(text) for text in item_ids]
    except FlenwheelError as exc:
        raise _refuse(node, str(exc)) from None
    labels = sorted({f"{stage}/{version}" for stage, version, _ in parsed})
    if len(labels) > 1:
        raise _refuse(node, f"the items belong to several datasets ({', '.join(labels)}); save each with its own node")
    keys = [key for _, _, key in parsed]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise _refuse(node, f"item(s) given twice: {', '.join(repeated)}")
    stage, version, _ = parsed[0]
    dataset = DatasetVersion(project, stage, version)
    if not dataset.exists():
        raise _refuse(node, f"{dataset.label} does not exist in {project.root}; the items came from another project")
    return dataset, keys


def _check_plan(dataset: DatasetVersion, keys: list[str], lineage: GraphLineage, node: str) -> dict[str, Any]:
    metadata = dataset.load()
    graph = metadata.info.get("graph")
    if metadata.status == "finished":
        raise _refuse(node, str(dataset.finished_error()))
    if not graph:
        raise _refuse(node, f"{dataset.label} was not planned by FLENwheel Flywheel Items")
    unknown = [k for k in keys if k not in graph["items"]]
    if unknown:
        raise _refuse(node, f"item(s) not planned in {dataset.label}: {', '.join(unknown)}")
    label, version = graph["settings"].get("label"), lineage.lora_version
    if graph["step"] == "model_card" and version and label != version:
        raise _refuse(node, f"{dataset.label} is the model card of {label}, but the graph loads the {version} LoRA; "
                            f"set label to {version} on the Flywheel Items node")
    started = graph.get("lineage")
    if started is not None and started != lineage.signature():
        raise _refuse(node, f"{dataset.label} was started with {started}, this graph uses {lineage.signature()}; "
                            "set new_version on the Flywheel Items node to start a version for these models")
    return graph


def _retry(dataset: DatasetVersion, key: str, seed: int, score: Any) -> None:
    with dataset.edit() as change:
        graph = change.metadata.info["graph"]
        graph["attempts"][key] = graph["attempts"].get(key, 0) + 1
        graph.setdefault("history", {}).setdefault(key, []).append({"seed": seed, **score.to_json()})


def _card_scorer(project: Project, dataset: DatasetVersion, graph: dict[str, Any], checks: str | None) -> CardScorer:
    settings = graph["settings"]
    card = load_card(settings["card_files"], tries=settings["tries"])
    scorer = CardScorer.from_project(project, card, checks)
    dataset.update_info(scoring=scorer.settings_json())
    return scorer


def save_items(project: Project, images: Sequence[Image.Image], item_ids: Sequence[str], *,
               lineage: GraphLineage | None = None, png_text: dict[str, Any] | None = None,
               scorer: IdentityGate | None = None, max_retries: int = 2, checks: str | None = None,
               node: str = "FLENwheel Save Flywheel Images") -> SaveResult:
    """Write each image into its planned item (see the module docstring)."""
    lineage = lineage or GraphLineage()
    dataset, keys = _target(project, item_ids, len(images), node)
    graph = _check_plan(dataset, keys, lineage, node)
    if graph.get("lineage") is None:
        with dataset.edit() as change:
            change.metadata.info["graph"]["lineage"] = lineage.signature()
    result = SaveResult(dataset)
    done = done_keys(dataset)
    card = graph["step"] == "model_card"
    card_scorer = _card_scorer(project, dataset, graph, checks) if card else None
    cells = {data["id"]: Cell.from_json(data) for data in dataset.load().info["card"]["cells"]} if card else {}
    for image, key, item in zip(images, keys, item_ids, strict=True):
        if key in done:
            result.already.append(item)
            continue
        entry = graph["items"][key]
        attempts = (dataset.load().info["graph"].get("attempts") or {}).get(key, 0)
        seed = attempt_seed(entry["seed"], attempts)
        fields: dict[str, Any] = {**entry["fields"], **lineage.fields(), "prompt": entry["prompt"], "seed": seed,
                                  "item_key": key, "engine": ENGINE, "attempts": attempts + 1}
        if scorer is not None and not card:
            score = scorer.score(image)
            if not score.match and attempts < max_retries:
                _retry(dataset, key, seed, score)
                result.retry.append(item)
                continue
            fields.update(drifted=not score.match, scores={**fields.get("scores", {}), "identity": score.to_json()})
            if not score.match:
                result.drifted.append(item)
        try:
            record = dataset.add_image(image, stem=entry["stem"], png_text=png_text, **fields)
        except DuplicateImageError as exc:
            result.duplicates.append(f"{item} ({exc.existing.filename})")
            continue
        if card_scorer is not None:
            cell = cells[fields["cell"]]
            scored = card_scorer.score(image, cell, dataset.image_path(record))
            store_scores(dataset, record, scored, card_scorer.fingerprint(), cell)
        result.saved.append(record)
    if card:
        result.outputs = write_outputs(project, graph["settings"]["label"], dataset).lines()
    return result
