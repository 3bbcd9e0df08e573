"""Validate ComfyUI workflows without ComfyUI: node types, widget values, links and API twins.

The checks mirror what makes ComfyUI refuse or silently mangle a graph: an unknown node type, a
value outside a widget's range or choice list, a widget list that no longer lines up with the
node's inputs (the node changed after the workflow was saved), a required input left open, a link
between incompatible sockets, and an API twin that drifted from its UI workflow. Every problem
names the node (id, title, type) and says what to change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .node_specs import NodeSpec, control_problem, known_specs, types_match, value_problem
from .workflow_format import (
    FRONTEND_ONLY,
    FRONTEND_PROMPT_INPUTS,
    MODE_BYPASSED,
    MODE_MUTED,
    NOTE_NODES,
    PRIMITIVE,
    REROUTE,
    Link,
    UiNode,
    UiWorkflow,
    WorkflowError,
    load_workflow,
    parse_ui,
    ui_to_api,
    widget_mismatch,
    widget_values,
    workflow_kind,
)


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _where(node_id: Any, title: str, node_type: str) -> str:
    return f"node {node_id} '{title}' ({node_type})"


def check_ui(data: dict[str, Any], specs: dict[str, NodeSpec]) -> list[Problem]:
    """Problems in a UI-format workflow (as saved by ComfyUI)."""
    try:
        workflow = parse_ui(data)
    except WorkflowError as exc:
        return [Problem("workflow", str(exc))]
    problems: list[Problem] = []
    for node in workflow.nodes.values():
        spec = specs.get(node.type)
        where = _where(node.id, node.title(spec), node.type)
        if node.type in FRONTEND_ONLY:
            problems += _frontend_node_problems(workflow, node, where, specs)
        elif spec is None:
            problems.append(Problem(where, "unknown node type: not in ComfyUI's core nodes nor in FLENwheel"))
        else:
            problems += _ui_node_problems(workflow, node, spec, where)
    for link in workflow.links.values():
        problems += _link_problems(workflow, link, specs)
    return problems


def _ui_node_problems(workflow: UiWorkflow, node: UiNode, spec: NodeSpec, where: str) -> list[Problem]:
    mismatch = widget_mismatch(node, spec)
    if mismatch:
        return [Problem(where, mismatch)]
    values = widget_values(node, spec)
    problems = []
    linked = {node.input_name(slot) for slot in range(len(node.inputs)) if workflow.link_into(node.id, slot)}
    for name, value in values.items():
        owner, _, extra = name.partition(".")
        if extra == "control_after_generate":
            message = control_problem(value)
        elif extra or owner in linked:
            message = None
        else:
            message = value_problem(spec.input(owner), value)
        if message:
            problems.append(Problem(where, f"widget '{owner}': {message}"))
    for entry in node.inputs:
        name = (entry.get("widget") or {}).get("name") or entry.get("name")
        if spec.input(name) is None:
            problems.append(
                Problem(where, f"input '{name}' no longer exists on this node; re-save the workflow")
            )
    if node.mode not in (MODE_MUTED, MODE_BYPASSED):
        for spec_input in spec.inputs:
            if spec_input.required and not spec_input.is_widget and spec_input.name not in linked:
                problems.append(
                    Problem(where, f"required input '{spec_input.name}' ({spec_input.type}) is not connected")
                )
    for index, output in enumerate(node.outputs):
        if index >= len(spec.outputs):
            problems.append(Problem(where, f"output {index} '{output.get('name')}' no longer exists"))
        elif output.get("type") not in (None, spec.outputs[index].type):
            problems.append(
                Problem(
                    where,
                    f"output {index} is now {spec.outputs[index].type}, "
                    f"the workflow says {output.get('type')}; re-save the workflow",
                )
            )
    return problems


def _frontend_node_problems(
    workflow: UiWorkflow, node: UiNode, where: str, specs: dict[str, NodeSpec]
) -> list[Problem]:
    values = node.widgets_values
    if node.type in NOTE_NODES:
        if not (isinstance(values, list) and len(values) == 1 and isinstance(values[0], str)):
            return [Problem(where, "a note holds exactly one text value")]
        return []
    if node.type != PRIMITIVE:
        return []
    problems = []
    for link in workflow.links_from(node.id):
        target = workflow.nodes.get(link.target_id)
        spec = specs.get(target.type) if target else None
        name = target.input_name(link.target_slot) if target else None
        target_input = spec.input(name) if spec and name else None
        if target_input is None or not target_input.is_widget:
            continue
        message = (
            value_problem(target_input, values[0]) if isinstance(values, list) and values else "has no value"
        )
        if message:
            problems.append(Problem(where, f"value for '{name}' of node {target.id}: {message}"))
    return problems


def _output_type(workflow: UiWorkflow, link: Link, specs: dict[str, NodeSpec], depth: int = 0) -> str | None:
    """The type a link carries, looking through reroutes; None when it cannot be known."""
    origin = workflow.nodes.get(link.origin_id)
    if origin is None or depth > 32:
        return None
    if origin.type == REROUTE:
        upstream = workflow.link_into(origin.id, 0)
        return _output_type(workflow, upstream, specs, depth + 1) if upstream else None
    if origin.type == PRIMITIVE:
        return None
    spec = specs.get(origin.type)
    if spec is None or link.origin_slot >= len(spec.outputs):
        return None
    return spec.outputs[link.origin_slot].type


def _link_problems(workflow: UiWorkflow, link: Link, specs: dict[str, NodeSpec]) -> list[Problem]:
    where = f"link {link.id} ({link.origin_id}:{link.origin_slot} -> {link.target_id}:{link.target_slot})"
    origin, target = workflow.nodes.get(link.origin_id), workflow.nodes.get(link.target_id)
    if origin is None or target is None:
        return [Problem(where, "joins a node that does not exist")]
    origin_spec = specs.get(origin.type)
    if origin_spec is not None and link.origin_slot >= len(origin_spec.outputs):
        return [Problem(where, f"{origin.type} has no output {link.origin_slot}")]
    name = target.input_name(link.target_slot)
    if name is None:
        return [Problem(where, f"node {target.id} has no input slot {link.target_slot}")]
    if target.inputs[link.target_slot].get("link") != link.id:
        return [Problem(where, f"input '{name}' of node {target.id} does not point back to this link")]
    target_spec = specs.get(target.type)
    target_input = target_spec.input(name) if target_spec else None
    produced = _output_type(workflow, link, specs)
    if target_input is None or produced is None:
        return []
    if not types_match(produced, target_input.type):
        return [
            Problem(
                where,
                f"{origin.type} output '{origin_spec.outputs[link.origin_slot].name}' gives "
                f"{produced} but '{name}' of {target.type} takes {target_input.type}",
            )
        ]
    return []


def check_api(prompt: dict[str, Any], specs: dict[str, NodeSpec]) -> list[Problem]:
    """Problems in an API-format prompt (what POST /prompt receives)."""
    problems: list[Problem] = []
    for node_id, node in prompt.items():
        node_type = str(node.get("class_type"))
        spec = specs.get(node_type)
        where = _where(node_id, (node.get("_meta") or {}).get("title") or node_type, node_type)
        if spec is None:
            reason = (
                "exists only in the UI, never in an API prompt"
                if node_type in FRONTEND_ONLY
                else "unknown node type: not in ComfyUI's core nodes nor in FLENwheel"
            )
            problems.append(Problem(where, reason))
            continue
        inputs = node.get("inputs") or {}
        ignored = FRONTEND_PROMPT_INPUTS.get(node_type, {})
        for name in inputs:
            if spec.input(name) is None and name not in ignored:
                problems.append(Problem(where, f"input '{name}' does not exist on this node"))
        for spec_input in spec.inputs:
            if spec_input.name not in inputs:
                if spec_input.required:
                    problems.append(Problem(where, f"required input '{spec_input.name}' is missing"))
                continue
            value = inputs[spec_input.name]
            if isinstance(value, list):
                message = _api_link_problem(prompt, value, spec_input.type, specs)
            else:
                message = (
                    value_problem(spec_input, value)
                    if spec_input.is_widget
                    else f"must be connected to a {spec_input.type} output, got the value {value!r}"
                )
            if message:
                problems.append(Problem(where, f"input '{spec_input.name}': {message}"))
    return problems


def _api_link_problem(
    prompt: dict[str, Any], value: list[Any], wanted: str, specs: dict[str, NodeSpec]
) -> str | None:
    if len(value) != 2 or not isinstance(value[1], int):
        return f"a link must be [node_id, output_index], got {value!r}"
    origin = prompt.get(str(value[0]))
    if origin is None:
        return f"linked to node {value[0]}, which is not in the prompt"
    origin_spec = specs.get(str(origin.get("class_type")))
    if origin_spec is None:
        return None
    if not 0 <= value[1] < len(origin_spec.outputs):
        return f"{origin_spec.name} has no output {value[1]}"
    produced = origin_spec.outputs[value[1]].type
    if not types_match(produced, wanted):
        origin_name = f"node {value[0]} ({origin_spec.name})"
        return f"{origin_name} output {value[1]} gives {produced}, this input takes {wanted}"
    return None


def compare_twins(ui: dict[str, Any], api: dict[str, Any], specs: dict[str, NodeSpec]) -> list[Problem]:
    """Differences between a UI workflow and its API twin (same nodes, titles, values and links)."""
    try:
        expected = ui_to_api(ui, specs)
    except WorkflowError as exc:
        return [Problem("UI workflow", f"cannot be converted for comparison: {exc}")]
    problems = []
    for node_id in sorted(set(expected) | set(api), key=_node_order):
        mine, theirs = expected.get(node_id), api.get(node_id)
        if mine is None or theirs is None:
            side = "API twin" if mine is None else "UI workflow"
            node = mine or theirs
            problems.append(Problem(f"node {node_id} ({node['class_type']})", f"exists only in the {side}"))
            continue
        where = _where(node_id, mine["_meta"]["title"], mine["class_type"])
        if mine["class_type"] != theirs.get("class_type"):
            problems.append(Problem(where, f"is a {theirs.get('class_type')} in the API twin"))
            continue
        title = (theirs.get("_meta") or {}).get("title")
        if title is not None and title != mine["_meta"]["title"]:
            problems.append(Problem(where, f"is titled '{title}' in the API twin"))
        ignored = set(FRONTEND_PROMPT_INPUTS.get(mine["class_type"], {}))
        their_inputs = theirs.get("inputs") or {}
        for name in sorted((set(mine["inputs"]) | set(their_inputs)) - ignored):
            if _canonical(mine["inputs"].get(name)) != _canonical(their_inputs.get(name)):
                problems.append(
                    Problem(
                        where,
                        f"input '{name}' is {json.dumps(mine['inputs'].get(name))} in the UI "
                        f"workflow but {json.dumps(their_inputs.get(name))} in the API twin",
                    )
                )
    return problems


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def _canonical(value: Any) -> Any:
    """Links compare by (str(id), slot); other values as JSON does."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
        return [str(value[0]), value[1]]
    return value


def check_file(path: str | Path, specs: dict[str, NodeSpec] | None = None) -> list[Problem]:
    """Problems in one workflow file of either format."""
    specs = specs if specs is not None else known_specs()
    try:
        data = load_workflow(path)
    except WorkflowError as exc:
        return [Problem(str(path), str(exc))]
    return check_ui(data, specs) if workflow_kind(data) == "ui" else check_api(data, specs)


def twin_path(ui_path: Path) -> Path:
    return ui_path.parent / "api" / ui_path.name


def check_folder(folder: str | Path, specs: dict[str, NodeSpec] | None = None) -> dict[str, list[Problem]]:
    """Every workflow in ``folder`` (UI) and ``folder/api`` (API twins), keyed by relative path."""
    folder = Path(folder)
    specs = specs if specs is not None else known_specs()
    return {
        path.relative_to(folder).as_posix(): check_in_folder(path, folder, specs)
        for path in workflow_files(folder)
    }


def check_in_folder(path: Path, folder: Path, specs: dict[str, NodeSpec]) -> list[Problem]:
    """One file of a workflows folder: its own problems, plus its twin's drift or a missing partner."""
    problems = check_file(path, specs)
    if path.parent == folder:
        problems += check_twin(path, specs)
    elif not (folder / path.name).exists():
        problems.append(
            Problem(f"api/{path.name}", f"API workflow without a UI original {folder.name}/{path.name}")
        )
    return problems


def check_twin(ui_path: Path, specs: dict[str, NodeSpec]) -> list[Problem]:
    twin = twin_path(ui_path)
    if not twin.exists():
        return [
            Problem(
                ui_path.name,
                f"has no API twin {twin.parent.name}/{twin.name}; write it with `flenwheel comfy convert`",
            )
        ]
    try:
        ui, api = load_workflow(ui_path), load_workflow(twin)
    except WorkflowError:
        return []
    if workflow_kind(ui) != "ui" or workflow_kind(api) != "api":
        return [Problem(ui_path.name, "workflows/ holds UI workflows and workflows/api/ their API twins")]
    return [
        Problem(f"{twin.parent.name}/{twin.name} {p.where}", p.message) for p in compare_twins(ui, api, specs)
    ]


def workflow_files(folder: Path) -> list[Path]:
    """The UI workflows of a folder and the API twins in its api/ subfolder."""
    return sorted(folder.glob("*.json")) + sorted((folder / "api").glob("*.json"))
