"""UI-format ComfyUI workflows built from a compact description, laid out left to right.

The pack's templates (``workflows/*.json``) are written from descriptions in
``comfy_tools/dev/workflow_templates.py`` rather than saved by hand, so they follow the nodes: every widget
value is filled in the node's INPUT_TYPES order from its own default unless the description sets
it, every link takes the type of the output it leaves, and a description that names an input,
output or widget the node no longer has fails at once. Nodes sit in columns in stage order, each
sized to show all its widgets (nothing collapsed), with the note that explains the stage first.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..node_specs import InputSpec, NodeSpec, types_match
from ..workflow_format import NOTE_NODES, ui_to_api

NOTE_TYPE = "MarkdownNote"
NOTE_TITLE = "About this stage"
NOTE_COLORS = {"color": "#432", "bgcolor": "#653"}
MUTED = 2
COLUMN_GAP, ROW_GAP, MARGIN = 60, 50, 40
# GROUP_TITLE leaves the group's title bar clear of the first node's title and its source badge.
GROUP_PAD, GROUP_TITLE = 14, 64
# ComfyUI's frontend (1.27) sizes a node at least 14 + 20 per socket row + 24 per widget (54 for a
# multi-line text); the extra here leaves room for the text boxes and long values.
TITLE_H, BASE_H, SLOT_H, WIDGET_H, MULTILINE_H, SLACK = 30, 14, 20, 24, 84, 12


@dataclass
class Node:
    """One node of a template: ``links`` maps an input to ``"node_key.output_name"``.

    ``column`` orders nodes left to right; ``band`` starts a new row of columns below the others,
    so a long graph (a whole turn) wraps instead of growing ten screens wide.
    """

    key: str
    type: str
    column: int
    values: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    width: int = 340
    mode: int = 0
    band: int = 0


@dataclass
class Group:
    title: str
    keys: tuple[str, ...]
    color: str = "#3f789e"


@dataclass
class Template:
    """A stage's workflow: file stem, the note's Markdown, nodes (note excluded) and groups."""

    name: str
    note: str
    nodes: list[Node]
    groups: list[Group] = field(default_factory=list)
    note_width: int = 380


class TemplateError(ValueError):
    """A template description does not fit the nodes as they are now."""


def _spec(specs: dict[str, NodeSpec], node: Node) -> NodeSpec:
    if node.type not in specs:
        raise TemplateError(f"{node.key}: unknown node type {node.type}")
    return specs[node.type]


def _default(spec_input: InputSpec) -> Any:
    if "default" in spec_input.options:
        return spec_input.options["default"]
    if spec_input.choices:
        return spec_input.choices[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(spec_input.type)


def widget_values(node: Node, spec: NodeSpec) -> list[Any]:
    """Positional widget values: the description's, else the node's defaults; seeds stay fixed."""
    names = {slot.name for slot in spec.widget_slots if slot.kind == "value"}
    unknown = set(node.values) - names
    if unknown:
        raise TemplateError(f"{node.key} ({node.type}) has no widget {', '.join(sorted(unknown))}")
    values = []
    for slot in spec.widget_slots:
        if slot.kind == "value":
            values.append(node.values.get(slot.name, _default(slot.input)))
        elif slot.kind == "control":
            values.append("fixed")
        else:
            values.append("image")
    return values


def node_height(spec: NodeSpec, width: int) -> int:
    """Tall enough for every socket and widget, so nothing is hidden when the template opens."""
    sockets = sum(1 for item in spec.inputs if not item.is_widget)
    rows = max(sockets, len(spec.outputs), 1)
    height = BASE_H + rows * SLOT_H + SLACK
    for slot in spec.widget_slots:
        multiline = slot.kind == "value" and slot.input.options.get("multiline")
        height += MULTILINE_H if multiline else WIDGET_H
    if spec.name in ("PreviewImage", "SaveImage"):
        height = max(height, int(width * 0.8))
    if spec.name == "PreviewAny":
        height = max(height, 160)
    return height


def note_height(text: str, width: int) -> int:
    chars_per_line = max(20, (width - 30) // 7)
    lines = sum(max(1, -(-len(line) // chars_per_line)) for line in text.splitlines())
    return 50 + lines * 19


def build(template: Template, specs: dict[str, NodeSpec]) -> dict[str, Any]:
    """The UI workflow (as ComfyUI saves it) for ``template``."""
    note = Node("note", NOTE_TYPE, 0, title=NOTE_TITLE, width=template.note_width)
    nodes = [note, *template.nodes]
    keys = [node.key for node in nodes]
    if len(set(keys)) != len(keys):
        raise TemplateError(f"{template.name}: node keys repeat")
    ids = {node.key: index for index, node in enumerate(nodes, start=1)}
    sizes = {
        node.key: (node.width, note_height(template.note, node.width) if node.type in NOTE_NODES
                   else node_height(_spec(specs, node), node.width))
        for node in nodes
    }
    positions = _layout(nodes, sizes, {key: group.title for group in template.groups for key in group.keys})
    links, inputs, outputs = _wire(template, nodes, ids, specs)
    order = _order(nodes, links, ids)
    ui_nodes = []
    for node in nodes:
        entry: dict[str, Any] = {
            "id": ids[node.key], "type": node.type, "pos": list(positions[node.key]),
            "size": list(sizes[node.key]), "flags": {}, "order": order[ids[node.key]], "mode": node.mode,
            "inputs": inputs.get(node.key, []), "outputs": outputs.get(node.key, []),
        }
        if node.type in NOTE_NODES:
            entry.update(properties={}, widgets_values=[template.note], **NOTE_COLORS)
        else:
            entry.update(properties={"Node name for S&R": node.type},
                         widgets_values=widget_values(node, _spec(specs, node)))
        if node.title:
            entry["title"] = node.title
        ui_nodes.append(entry)
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"flenwheel/workflows/{template.name}")),
        "revision": 0,
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": _groups(template, positions, sizes),
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "flenwheel_template": template.name},
        "version": 0.4,
    }


def _layout(nodes: list[Node], sizes: dict[str, tuple[int, int]],
            group_of: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Columns left to right in stage order, nodes stacked inside a column, bands one below another.

    A node that opens a group below another node of its column starts lower by the group's title
    bar, so the node above never covers the group's title (``group_of``: node key -> group title).
    """
    bands: dict[int, dict[int, list[Node]]] = {}
    for node in nodes:
        bands.setdefault(node.band, {}).setdefault(node.column, []).append(node)
    positions, top = {}, MARGIN + GROUP_TITLE
    for band in sorted(bands):
        x, bottom = MARGIN, top
        for column in sorted(bands[band]):
            y, above = top, None
            for index, node in enumerate(bands[band][column]):
                group = group_of.get(node.key)
                if index and group is not None and group != above:
                    y += GROUP_TITLE
                positions[node.key] = (x, y)
                y += sizes[node.key][1] + TITLE_H + ROW_GAP
                above = group
            bottom = max(bottom, y)
            x += max(sizes[node.key][0] for node in bands[band][column]) + COLUMN_GAP
        top = bottom + GROUP_TITLE
    return positions


def _wire(template: Template, nodes: list[Node], ids: dict[str, int],
          specs: dict[str, NodeSpec]) -> tuple[list[list[Any]], dict[str, list], dict[str, list]]:
    """Links with the origin output's type, plus every node's inputs and outputs lists."""
    inputs: dict[str, list[dict[str, Any]]] = {}
    outputs: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        if node.type in NOTE_NODES:
            continue
        spec = _spec(specs, node)
        inputs[node.key] = [_input_entry(item) for item in spec.inputs]
        outputs[node.key] = [{"localized_name": out.name, "name": out.name, "type": out.type, "links": []}
                             for out in spec.outputs]
    links: list[list[Any]] = []
    by_key = {node.key: node for node in nodes}
    for node in nodes:
        for input_name, origin in node.links.items():
            origin_key, _, output_name = origin.partition(".")
            if origin_key not in by_key:
                raise TemplateError(f"{template.name}: {node.key}.{input_name} links from unknown {origin_key}")
            source, target = _spec(specs, by_key[origin_key]), _spec(specs, node)
            slot = next((i for i, out in enumerate(source.outputs) if out.name == output_name), None)
            target_slot = next((i for i, item in enumerate(target.inputs) if item.name == input_name), None)
            if slot is None or target_slot is None:
                raise TemplateError(f"{template.name}: no link {origin} -> {node.key}.{input_name}")
            kind = source.outputs[slot].type
            if not types_match(kind, target.inputs[target_slot].type):
                raise TemplateError(f"{template.name}: {origin} gives {kind}, {node.key}.{input_name} "
                                    f"takes {target.inputs[target_slot].type}")
            link_id = len(links) + 1
            links.append([link_id, ids[origin_key], slot, ids[node.key], target_slot, kind])
            inputs[node.key][target_slot]["link"] = link_id
            outputs[origin_key][slot]["links"].append(link_id)
    return links, inputs, outputs


def _input_entry(item: InputSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"localized_name": item.name, "name": item.name, "type": item.type, "link": None}
    if item.is_widget:
        entry["widget"] = {"name": item.name}
    return entry


def _order(nodes: list[Node], links: list[list[Any]], ids: dict[str, int]) -> dict[int, int]:
    """Execution order as the frontend stores it: each node after every node it takes input from."""
    waiting = {ids[node.key]: {link[1] for link in links if link[3] == ids[node.key]} for node in nodes}
    order: dict[int, int] = {}
    while waiting:
        ready = sorted(node_id for node_id, needs in waiting.items() if needs <= set(order))
        if not ready:
            raise TemplateError(f"links form a cycle between nodes {sorted(waiting)}")
        for node_id in ready:
            order[node_id] = len(order)
            del waiting[node_id]
    return order


def _groups(template: Template, positions: dict[str, tuple[int, int]],
            sizes: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    groups = []
    for index, group in enumerate(template.groups, start=1):
        missing = set(group.keys) - set(positions)
        if missing:
            raise TemplateError(f"{template.name}: group '{group.title}' names unknown nodes {sorted(missing)}")
        left = min(positions[key][0] for key in group.keys) - GROUP_PAD
        top = min(positions[key][1] for key in group.keys) - TITLE_H - GROUP_TITLE + 6
        right = max(positions[key][0] + sizes[key][0] for key in group.keys) + GROUP_PAD
        bottom = max(positions[key][1] + sizes[key][1] for key in group.keys) + GROUP_PAD
        groups.append({"id": index, "title": group.title, "bounding": [left, top, right - left, bottom - top],
                       "color": group.color, "font_size": 22, "flags": {}})
    return groups


def dump(data: Any) -> str:
    """JSON as ``flenwheel comfy convert`` writes it, so converting a template again changes nothing."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_files(templates: list[Template], specs: dict[str, NodeSpec]) -> dict[str, str]:
    """``{relative path: text}`` of every template's UI workflow and its API twin under ``api/``."""
    files = {}
    for template in templates:
        ui = build(template, specs)
        files[f"{template.name}.json"] = dump(ui)
        files[f"api/{template.name}.json"] = dump(ui_to_api(ui, specs))
    return files
