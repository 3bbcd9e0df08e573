"""Terminal view of a ComfyUI run: which node runs, a progress bar for its steps, and the results.

Fed by the websocket events the API runner receives. Lines go to stderr, so stdout carries only
the results (or ``--json``) and can be piped.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

from .client import RunResult, node_label


class RunDisplay:
    """An event handler for ``run_prompt`` that narrates the run on a terminal."""

    def __init__(self, prompt: dict[str, Any], stream: TextIO | None = None) -> None:
        self.prompt = prompt
        self.stream = stream or sys.stderr
        self.bar: tqdm | None = None
        self.bar_node: str | None = None
        self.cached: set[str] = set()
        self.started = 0

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "execution_start":
            self.line(f"running prompt {data.get('prompt_id')}")
        elif kind == "execution_cached" and data.get("nodes"):
            self.cached.update(map(str, data["nodes"]))
            self.line(f"{len(self.cached)} node(s) unchanged since the last run, taken from ComfyUI's cache")
        elif kind == "executing" and data.get("node") is not None:
            self.close_bar()
            self.started += 1
            total = max(len(self.prompt) - len(self.cached), self.started)
            self.line(f"[{self.started}/{total}] {node_label(self.prompt, data['node'])}")
        elif kind == "progress":
            self.progress(str(data.get("node")), int(data.get("value", 0)), int(data.get("max", 0) or 1))
        elif kind in ("execution_success", "execution_error", "execution_interrupted"):
            self.close_bar()

    def progress(self, node: str, value: int, total: int) -> None:
        if self.bar is None or self.bar_node != node or self.bar.total != total:
            self.close_bar()
            self.bar = tqdm(
                total=total,
                file=self.stream,
                unit="step",
                leave=False,
                dynamic_ncols=True,
                desc=str((self.prompt.get(node, {}).get("_meta") or {}).get("title") or node),
            )
            self.bar_node = node
        self.bar.update(value - self.bar.n)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def line(self, text: str) -> None:
        self.close_bar()
        print(text, file=self.stream, flush=True)


def describe_outputs(result: RunResult, prompt: dict[str, Any]) -> list[str]:
    """The run's outputs, node by node: images (and where they were saved), texts, other values."""
    lines = []
    for node_id, output in sorted(result.outputs.items(), key=lambda item: _order(item[0])):
        lines.append(f"{node_label(prompt, node_id)}:")
        for ref in output.get("images") or []:
            folder = "/".join(part for part in (ref.get("type", "output"), ref.get("subfolder")) if part)
            lines.append(f"  image {ref.get('filename')} ({folder})")
        for text in output.get("text") or []:
            lines += ["  " + line for line in str(text).splitlines() or [""]]
        for key, value in output.items():
            if key not in ("images", "text"):
                lines.append(f"  {key}: {_short(value)}")
    lines += [f"saved {path}" for path in result.downloaded]
    return lines


def _order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
