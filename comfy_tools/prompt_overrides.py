"""``--set NODE_TITLE.input=value``: change widget values of an API prompt by node title.

Titles are what users see on the canvas and what ``_meta.title`` carries in API exports, so a
script can say ``--set "Train FLUX LoRA.max_train_steps=500"`` without knowing node ids (an id
works too). The new value takes the type of the value it replaces, so ``--set Seed.seed=7`` stays
an integer while ``--set Prompt.text=123`` stays text.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..core.data.errors import FlenwheelError

TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}


class OverrideError(FlenwheelError):
    """A --set assignment does not name exactly one node and input, or its value does not fit."""


def apply_overrides(prompt: dict[str, Any], assignments: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``prompt`` with each ``TITLE.input=value`` applied."""
    prompt = copy.deepcopy(prompt)
    for assignment in assignments:
        target, input_name, text = parse_assignment(assignment)
        node_id = find_node(prompt, target)
        inputs = prompt[node_id].setdefault("inputs", {})
        inputs[input_name] = coerce(text, inputs.get(input_name), f"{target}.{input_name}")
    return prompt


def parse_assignment(assignment: str) -> tuple[str, str, str]:
    key, equals, text = assignment.partition("=")
    target, dot, input_name = key.rpartition(".")
    if not equals or not dot or not target.strip() or not input_name.strip():
        raise OverrideError(
            f'--set {assignment!r}: write NODE_TITLE.input=value (e.g. "Save Image.filename_prefix=run1")'
        )
    return target.strip(), input_name.strip(), text


def find_node(prompt: dict[str, Any], target: str) -> str:
    """The one node titled ``target`` (or with that id, or that type when it is the only one)."""
    titled = [nid for nid, node in prompt.items() if (node.get("_meta") or {}).get("title") == target]
    typed = [nid for nid, node in prompt.items() if node.get("class_type") == target]
    for matches in (titled, [target] if target in prompt else [], typed):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise OverrideError(
                f"--set: {len(matches)} nodes are called '{target}' (ids {', '.join(matches)}); "
                "use a node id instead, e.g. --set 12.input=value"
            )
    titles = sorted(
        {(node.get("_meta") or {}).get("title") or node.get("class_type", "?") for node in prompt.values()}
    )
    raise OverrideError(f"--set: no node is titled '{target}'; titles in this workflow: {', '.join(titles)}")


def coerce(text: str, current: Any, label: str) -> Any:
    """``text`` as the type of the value it replaces (JSON when the input had no value yet)."""
    if isinstance(current, list):
        raise OverrideError(
            f"--set {label}: this input is connected to node {current[0]}; only widget values can be set"
        )
    if isinstance(current, bool):
        word = text.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise OverrideError(f"--set {label}: expects true or false, got {text!r}")
        return word in TRUE_WORDS
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise OverrideError(f"--set {label}: expects an integer, got {text!r}") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise OverrideError(f"--set {label}: expects a number, got {text!r}") from None
    if isinstance(current, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
