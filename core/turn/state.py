"""``reports/flywheel.json``: the loop's memory and its report, one entry per turn.

The loop writes this file after every stage (atomically), so Ctrl+C or kill -9 loses no finished
stage: a rerun reads which stages of which turn are done, with the versions they chose, and goes
on from there. The same entries are the flywheel report: LoRA versions (character and editor),
images per stage, identity pass rates, the correction rate, which editor was chosen and why,
first-try success (verified and unverified apart), the gain over the previous turn, wall time per
stage and, at the end, why the loop stopped. Aiming adds, per turn: the training set's ``coverage``
(views x expressions, poses, as measured), the generation ``allocation`` and the enrichment's
``enrich_aim`` with their reasons, the ``card``'s success per row/column/poses, and the
``next_allocation`` that card and coverage give the next turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.atomic import atomic_write_json
from ..data.errors import FlenwheelError
from ..data.project import Project
from ..data.records import utc_now

FLYWHEEL_FILE = "flywheel.json"
FORMAT = 1
#: The stages of one turn, in order (the names ``flenwheel status`` prints).
STAGES = ("sources", "enrich", "review enriched", "train character", "generate", "review synthetic",
          "model card", "corrections", "triplets", "train editor", "compare editors")


def flywheel_path(project: Project) -> Path:
    return project.root / "reports" / FLYWHEEL_FILE


def new_entry(number: int, editor: list[str]) -> dict[str, Any]:
    """A turn not started yet: it enriches with ``editor`` (LoRA texts; empty for the base editor)."""
    return {
        "turn": number, "started": utc_now(), "finished": None, "done": [], "versions": {},
        "char_lora": None, "editor": {"used": list(editor), "trained": None, "chosen": list(editor), "why": None},
        "images": {}, "identity_pass_rate": {"enrichment": None, "generation": None}, "correction_rate": None,
        "first_try": None, "gain": None, "seconds": {}, "notes": [],
        "coverage": None, "allocation": None, "enrich_aim": None, "card": None, "next_allocation": None,
    }


@dataclass
class FlywheelState:
    """The loop's file in memory; every change goes to disk through ``save``."""

    project: Project
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, project: Project, auto_review: bool = False) -> FlywheelState:
        path = flywheel_path(project)
        if not path.is_file():
            return cls(project, {"format": FORMAT, "project": project.config.name, "auto_review": auto_review,
                                 "target": None, "turns": [], "stopped": None})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FlenwheelError(f"{path} cannot be read ({exc}); move it aside to start the loop afresh") from None
        if not isinstance(data, dict) or data.get("format", 0) > FORMAT or "turns" not in data:
            raise FlenwheelError(f"{path} is not a flywheel report this FLENwheel understands")
        data["auto_review"] = data.get("auto_review") or auto_review
        return cls(project, data)

    @property
    def turns(self) -> list[dict[str, Any]]:
        return self.data["turns"]

    @property
    def finished_turns(self) -> list[dict[str, Any]]:
        return [t for t in self.turns if t["finished"]]

    def current(self, editor: list[str]) -> dict[str, Any]:
        """The unfinished turn, else a new one that enriches with the previous turn's chosen editor."""
        if self.turns and not self.turns[-1]["finished"]:
            return self.turns[-1]
        chosen = self.turns[-1]["editor"]["chosen"] if self.turns else editor
        entry = new_entry(len(self.turns) + 1, chosen)
        self.turns.append(entry)
        self.save()
        return entry

    def save(self) -> Path:
        path = flywheel_path(self.project)
        atomic_write_json(path, self.data)
        return path

    @contextmanager
    def stage(self, entry: dict[str, Any], name: str) -> Iterator[bool]:
        """Yields True when ``name`` still has to run; marks it done (with its wall time) after it ran."""
        if name in entry["done"]:
            yield False
            return
        start = time.monotonic()
        yield True
        entry["seconds"][name] = round(entry["seconds"].get(name, 0.0) + time.monotonic() - start, 2)
        entry["done"].append(name)
        self.save()
