"""The training runs a project holds on disk, for the Training tab (served as
``GET /flenwheel/review/{project}/training`` by ``core/turn/flywheel_routes.TrainingRoutes``).

The sidebar's live cards come from the events a running node pushes, so a page opened later (or in
another browser) showed "No training yet" beside a Flywheel table that listed two trained LoRAs.
Every LoRA version folder of a family's layout that has a ``train_log.jsonl`` is a run; its log (the
same events the browser is pushed) gives the trainer, the progress, the loss curve and the outcome.
The route only reads those logs inside the project addressed by its opaque key.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ...trainers.protocol import LOG_FILE, loss_history, read_log
from ..data.project import Project
from ..models.registry import families

#: A run whose log has been silent this long without a done/error line was interrupted (a killed
#: ComfyUI); model loading, the longest silent phase, reports within this.
SILENT_S = 15 * 60
#: Loss points sent per run: enough for the sidebar's 300-px chart.
MAX_POINTS = 300


def run_summary(folder: Path, events: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """One run as the Training tab's card shows it (the same fields its live events fill)."""
    start = next((e for e in reversed(events) if e["event"] == "start"), {})
    steps = [e for e in events if e["event"] == "step"]
    last_step = steps[-1] if steps else {}
    end = next((e for e in reversed(events) if e["event"] in ("done", "error")), None)
    if end is None:
        status = "running" if now - float(events[-1].get("time") or 0) < SILENT_S else "interrupted"
    else:
        status = end.get("status", "finished") if end["event"] == "done" else "error"
    phase = next((e for e in reversed(events) if e["event"] == "phase"), None)
    losses = loss_history(events)
    stride = max(1, -(-len(losses) // MAX_POINTS))
    return {
        "output": str(folder), "kind": start.get("trainer"), "status": status,
        "step": (end or last_step or start).get("step", 0), "total": last_step.get("total", start.get("total")),
        "loss": last_step.get("loss"), "lora": (end or {}).get("lora_path"),
        "error": (end or {}).get("message") if status == "error" else None,
        "checkpoints": [e["step"] for e in events if e["event"] == "checkpoint"],
        "losses": losses[::stride], "time": events[-1].get("time"),
        "phase": phase_text(phase) if phase and not steps and end is None else None,
    }


def phase_text(event: dict[str, Any]) -> str:
    """"caching latents 12/40" for a phase event with counts, else its name."""
    counts = f" {event['done']}/{event['total']}" if event.get("total") is not None else ""
    return f"{event.get('phase', '')}{counts}"


def project_runs(project: Project) -> list[dict[str, Any]]:
    """Every run with a training log under the project's LoRA folders, newest first."""
    folders = sorted({project.root / entry.lora.folder for entry in families()})
    runs = []
    now = time.time()
    for folder in folders:
        if not folder.is_dir():
            continue
        for version in sorted(folder.iterdir()):
            events = read_log(version / LOG_FILE) if version.is_dir() and not version.is_symlink() else []
            if events:
                runs.append(run_summary(version, events, now))
    return sorted(runs, key=lambda run: run["time"] or 0, reverse=True)
