"""ComfyUI workflow files in their two formats, and the UI-to-API conversion the frontend performs.

UI format (what ComfyUI saves and the template browser loads): ``nodes`` with positional
``widgets_values`` and ``links`` ``[id, origin, origin_slot, target, target_slot, type]``. API
format (what ``POST /prompt`` takes): ``{id: {"class_type", "inputs", "_meta": {"title"}}}`` where
an input is a value or a ``[origin_id, slot]`` link. The conversion follows the frontend's
``graphToPrompt``: frontend-only nodes (notes, primitives, reroutes) vanish, a primitive's value
lands in the widget it feeds, muted nodes are dropped and bypassed nodes pass their matching input
through, and the UI-only widget values (control_after_generate, upload) are left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.data.errors import FlenwheelError
from .node_specs import NodeSpec, core_specs, types_match

NOTE_NODES = frozenset({"Note", "MarkdownNote"})
PRIMITIVE = "PrimitiveNode"
REROUTE = "Reroute"
FRONTEND_ONLY = NOTE_NODES | {PRIMITIVE, REROUTE}
MODE_MUTED, MODE_BYPASSED = 2, 4


@dataclass(frozen=True)
class FrontendWidgets:
    """Widgets a frontend's own extension adds to a core node, from frontend version ``since`` on.

    ``prompt`` is what they put in every prompt of the node (the server ignores it). ``saved`` lists how
    many values they may append to the node's ``widgets_values`` in a saved workflow; ``from_saved``
    names the prompt input that takes the last of those values (a toggle the user can flip).
    """

    since: tuple[int, ...]
    prompt: dict[str, Any]
    saved: tuple[int, ...] = ()
    from_saved: str | None = None


#: Measured by adding, saving, reloading and converting a PreviewAny in each frontend (headless
#: Chromium, see docs/comfyui-integration.md). 1.27.10 sends a read-only ``preview`` text and saves
#: nothing; 1.37.11 adds the ``previewMode`` toggle, saves ``[null, null, toggle]`` and sends the
#: toggle; 1.58.1 saves and sends neither. Versions between two measured ones follow the older.
FRONTEND_WIDGETS: dict[str, tuple[FrontendWidgets, ...]] = {
    "PreviewAny": (
        FrontendWidgets((1, 0), {"preview": ""}),
        FrontendWidgets((1, 37), {"preview": "", "previewMode": False}, (1, 3), "previewMode"),
        FrontendWidgets((1, 58), {}),
    ),
}
#: Frontends before this version title a core node that the server sends without a display name from
#: their own English node list (measured: 1.27.10 titles ImageScaleToTotalPixels "Scale Image to Total
#: Pixels" on ComfyUI 0.3.64; 1.37.11 keeps "ImageScaleToTotalPixels" on 0.12.1).
LOCALE_TITLES_UNTIL = (1, 37)
#: The frontend the converter follows unless told otherwise: the one of the oldest supported ComfyUI
#: (0.3.64), whose prompts every newer server accepts.
DEFAULT_FRONTEND = "1.27.10"
_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")
#: Every input any frontend adds to a node's prompt; the validator ignores them.
FRONTEND_PROMPT_INPUTS: dict[str, frozenset[str]] = {
    node: frozenset(name for widgets in versions for name in widgets.prompt)
    for node, versions in FRONTEND_WIDGETS.items()
}


def frontend_version(text: str | None) -> tuple[int, ...]:
    """``(1, 37, 11)`` for "1.37.11" (a leading "v" and a suffix like "-rc.1" ignored); the default for None."""
    match = _VERSION.match((text or DEFAULT_FRONTEND).strip())
    if match is None:
        raise WorkflowError(f"'{text}' is not a frontend version like 1.37.11")
    return tuple(int(part) for part in match.group(1).split("."))


def frontend_widgets(node_type: str, frontend: str | None = None) -> FrontendWidgets | None:
    """What the given frontend (default: DEFAULT_FRONTEND) adds to ``node_type``, or None."""
    version = frontend_version(frontend)
    known = [widgets for widgets in FRONTEND_WIDGETS.get(node_type, ()) if widgets.since <= version]
    return known[-1] if known else None


class WorkflowError(FlenwheelError):
    """A workflow file cannot be read or converted; the message names the file or node."""


@dataclass(frozen=True)
class Link:
    id: int
    origin_id: int
    origin_slot: int
    target_id: int
    target_slot: int
    type: str


@dataclass
class UiNode:
    id: int
    type: str
    raw: dict[str, Any]

    @property
    def mode(self) -> int:
        return int(self.raw.get("mode") or 0)

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list(self.raw.get("inputs") or [])

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.raw.get("outputs") or [])

    @property
    def widgets_values(self) -> list[Any] | dict[str, Any]:
        values = self.raw.get("widgets_values")
        return values if values is not None else []

    def title(self, spec: NodeSpec | None) -> str:
        return self.raw.get("title") or (spec.display_name if spec else self.type)

    def input_name(self, slot: int) -> str | None:
        """The input a link lands on: a socket's name, or the widget's name for a converted widget."""
        if not 0 <= slot < len(self.inputs):
            return None
        entry = self.inputs[slot]
        widget = entry.get("widget") or {}
        return widget.get("name") or entry.get("name")


@dataclass
class UiWorkflow:
    nodes: dict[int, UiNode]
    links: dict[int, Link]

    def link_into(self, node_id: int, slot: int) -> Link | None:
        for link in self.links.values():
            if link.target_id == node_id and link.target_slot == slot:
                return link
        return None

    def links_from(self, node_id: int) -> list[Link]:
        return [link for link in self.links.values() if link.origin_id == node_id]


def load_workflow(path: str | Path) -> dict[str, Any]:
    """Read a workflow JSON file, with an error that names the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise WorkflowError(f"{path} nests too deeply to be a workflow") from None
    except OSError as exc:
        raise WorkflowError(f"{path} cannot be read: {exc.strerror}") from None
    workflow_kind(data, str(path))
    return data


def workflow_kind(data: Any, name: str = "workflow") -> str:
    """'ui' or 'api', or a WorkflowError saying why the data is neither."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        if (data.get("definitions") or {}).get("subgraphs"):
            raise WorkflowError(
                f"{name} uses subgraphs, which FLENwheel's tools do not read; unpack them first"
            )
        return "ui"
    if (
        isinstance(data, dict)
        and data
        and all(
            isinstance(node, dict) and "class_type" in node and isinstance(node.get("inputs", {}), dict)
            for node in data.values()
        )
    ):
        return "api"
    raise WorkflowError(
        f"{name} is neither a UI workflow (nodes + links, as saved by ComfyUI) nor an API prompt "
        "(node ids mapping to class_type + inputs, as exported by 'Export (API)')"
    )


def _link(entry: Any) -> Link:
    if isinstance(entry, dict):
        keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
        entry = [entry.get(key) for key in keys]
    if not isinstance(entry, list) or len(entry) < 6:
        raise WorkflowError(f"malformed link {entry!r}: expected [id, origin, slot, target, slot, type]")
    return Link(int(entry[0]), int(entry[1]), int(entry[2]), int(entry[3]), int(entry[4]), str(entry[5]))


def parse_ui(data: dict[str, Any]) -> UiWorkflow:
    nodes = {}
    for raw in data["nodes"]:
        if not isinstance(raw, dict) or "id" not in raw or "type" not in raw:
            raise WorkflowError(f"malformed node {str(raw)[:80]}: every node needs an id and a type")
        nodes[int(raw["id"])] = UiNode(int(raw["id"]), str(raw["type"]), raw)
    links = {link.id: link for link in map(_link, data.get("links") or [])}
    return UiWorkflow(nodes, links)


def _saved_by_frontends(node_type: str) -> set[int]:
    """How many values, after the node's own, some frontend saves for widgets it added itself."""
    return {0} | {count for widgets in FRONTEND_WIDGETS.get(node_type, ()) for count in widgets.saved}


def _frontend_inputs(node: UiNode, spec: NodeSpec, frontend: str | None) -> dict[str, Any]:
    """What the frontend adds to this node's prompt, its toggle read from the saved values when there."""
    added = frontend_widgets(node.type, frontend)
    if added is None:
        return {}
    inputs = dict(added.prompt)
    values = node.widgets_values
    extra = values[len(spec.widget_slots):] if isinstance(values, list) else []
    if added.from_saved and extra and isinstance(extra[-1], bool):
        inputs[added.from_saved] = extra[-1]
    return inputs


def _own_values(node: UiNode, spec: NodeSpec) -> list[Any] | dict[str, Any]:
    """The node's widget values without those a frontend appended for its own widgets."""
    values = node.widgets_values
    if isinstance(values, dict):
        return values
    extra = len(values) - len(spec.widget_slots)
    return values[: len(spec.widget_slots)] if extra > 0 and extra in _saved_by_frontends(node.type) else values


def widget_mismatch(node: UiNode, spec: NodeSpec) -> str | None:
    """Why the node's positional widget values no longer line up with its spec, or None."""
    values = _own_values(node, spec)
    slots = spec.widget_slots
    if isinstance(values, dict) or len(values) == len(slots):
        return None
    names = ", ".join(slot.name for slot in slots) or "none"
    return (
        f"has {len(values)} widget values but {spec.name} has {len(slots)} widgets ({names}); "
        "its inputs changed since the workflow was saved: re-save or update the workflow"
    )


def widget_values(node: UiNode, spec: NodeSpec) -> dict[str, Any]:
    """Input name -> value for the node's widgets; extra values are keyed ``input.control_after_generate``."""
    mismatch = widget_mismatch(node, spec)
    if mismatch:
        raise WorkflowError(f"node {node.id} ({node.type}) {mismatch}")
    values = _own_values(node, spec)
    keys = [
        slot.name if slot.kind == "value" else f"{slot.input.name}.{slot.name}" for slot in spec.widget_slots
    ]
    if isinstance(values, dict):
        pairs = zip(keys, spec.widget_slots, strict=True)
        return {key: values[slot.name] for key, slot in pairs if slot.name in values}
    return dict(zip(keys, values, strict=True))


def resolve_origin(workflow: UiWorkflow, link: Link, specs: dict[str, NodeSpec]) -> tuple[str, Any] | None:
    """Follow a link back through reroutes and bypassed nodes.

    Returns ("link", (node_id, slot)) for a real origin, ("value", v) for a primitive's value, or
    None when the input ends up unconnected (a muted node, a dangling reroute).
    """
    seen: set[int] = set()
    while True:
        origin = workflow.nodes.get(link.origin_id)
        if origin is None or origin.id in seen:
            return None
        seen.add(origin.id)
        if origin.type == PRIMITIVE:
            values = origin.widgets_values
            return ("value", values[0]) if isinstance(values, list) and values else None
        if origin.type == REROUTE or origin.mode == MODE_BYPASSED:
            upstream = _pass_through(workflow, origin, link, specs)
            if upstream is None:
                return None
            link = upstream
            continue
        if origin.mode == MODE_MUTED or origin.type in NOTE_NODES:
            return None
        return ("link", (origin.id, link.origin_slot))


def _pass_through(workflow: UiWorkflow, node: UiNode, link: Link, specs: dict[str, NodeSpec]) -> Link | None:
    """The link a reroute or bypassed node forwards: same slot if its type fits, else the first that fits."""
    if node.type == REROUTE:
        return workflow.link_into(node.id, 0)
    spec = specs.get(node.type)
    wanted = (
        spec.outputs[link.origin_slot].type if spec and link.origin_slot < len(spec.outputs) else link.type
    )
    order = [link.origin_slot] + [i for i in range(len(node.inputs)) if i != link.origin_slot]
    for slot in order:
        if slot < len(node.inputs) and types_match(str(node.inputs[slot].get("type", "")), wanted):
            upstream = workflow.link_into(node.id, slot)
            if upstream is not None:
                return upstream
    return None


def ui_to_api(
    data: dict[str, Any], specs: dict[str, NodeSpec], frontend: str | None = None
) -> dict[str, dict[str, Any]]:
    """The API prompt ComfyUI's frontend of version ``frontend`` (default DEFAULT_FRONTEND) queues for this
    UI workflow: frontends differ only in what their own widgets add, which the server ignores."""
    workflow = parse_ui(data)
    prompt: dict[str, dict[str, Any]] = {}
    for node in sorted(workflow.nodes.values(), key=lambda n: n.id):
        if node.type in FRONTEND_ONLY or node.mode in (MODE_MUTED, MODE_BYPASSED):
            continue
        spec = specs.get(node.type)
        if spec is None:
            raise WorkflowError(
                f"node {node.id} has unknown type {node.type!r}: install the pack that provides it"
            )
        inputs = {name: _wrap(value) for name, value in widget_values(node, spec).items() if "." not in name}
        inputs.update(_frontend_inputs(node, spec, frontend))
        for slot in range(len(node.inputs)):
            link = workflow.link_into(node.id, slot)
            name = node.input_name(slot)
            resolved = resolve_origin(workflow, link, specs) if link and name else None
            if resolved is None:
                continue
            kind, value = resolved
            inputs[name] = _wrap(value) if kind == "value" else [str(value[0]), value[1]]
        prompt[str(node.id)] = {
            "inputs": inputs,
            "class_type": node.type,
            "_meta": {"title": _title(node, spec, frontend)},
        }
    for entry in prompt.values():
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del entry["inputs"][name]
    return prompt


def _title(node: UiNode, spec: NodeSpec, frontend: str | None) -> str:
    """The node's title as the frontend sends it (see LOCALE_TITLES_UNTIL)."""
    unnamed = not node.raw.get("title") and spec.display_name == spec.name
    if unnamed and frontend_version(frontend) < LOCALE_TITLES_UNTIL:
        named = core_specs().get(spec.name)
        if named is not None:
            return named.display_name
    return node.title(spec)


def _wrap(value: Any) -> Any:
    """List values are wrapped, because a bare two-item list means a link in API format."""
    return {"__value__": value} if isinstance(value, list) else value
