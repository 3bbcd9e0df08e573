"""Any picture checked against one card cell, exactly as the card would record it (``flenwheel benchmark score``).

Users try a photo or a generated image against a cell ("would this pass profile-left-neutral?"),
and benchmarks measure the instruments on labelled photos, through the same ``CardScorer.score``
and the same outcome rule (``results.judge``) the card uses; with no person's verdict, the outcome
says what automation alone concludes: success only when every criterion was verified automatically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data.errors import FlenwheelError, ImageLoadError
from ..data.images import load_image
from ..data.project import Project
from ..vision.body_pose import open_pose_model
from .checks import CardScorer
from .model_card import Card, Cell
from .results import judge


def find_cell(project: Project, card: Card, cell_id: str) -> Cell:
    """The card's cell named ``cell_id`` (e.g. ``profile-left-neutral``, ``sitting``), or an error listing them."""
    cells = {cell.id: cell for cell in card.cells(project.subject, project.token)}
    if cell_id not in cells:
        raise FlenwheelError(f"the card has no cell '{cell_id}'; its cells are: {', '.join(cells)}")
    return cells[cell_id]


def score_one(scorer: CardScorer, cell: Cell, path: Path) -> dict[str, Any]:
    """One file's checks, what the instruments read, and its outcome by the one rule (no verdict)."""
    try:
        image = load_image(path)
    except ImageLoadError as exc:
        return {"file": str(path), "cell": cell.id, "error": f"unreadable: {exc.problem}", "outcome": "failure"}
    scored = scorer.score(image, cell, path)
    checks = {name: result.to_json() for name, result in scored["checks"].items()}
    failures, unverified, result = judge(cell, checks, None)
    return {"file": str(path), "cell": cell.id, "checks": checks, "instruments": scored["instruments"],
            "identity": scored["identity"], "failures": failures, "unverified": unverified, "outcome": result}


def score_files(project: Project, card: Card, files: Sequence[str | Path], cell_id: str,
                checks: Sequence[str] | str | None = None, pose_python: str | None = None) -> list[dict[str, Any]]:
    """Every file scored against the cell ``cell_id``, in order; an unreadable file gets a row with its reason."""
    cell = find_cell(project, card, cell_id)
    with contextlib.ExitStack() as stack:
        pose_model = open_pose_model(pose_python) if cell.kind == "pose" else None
        if pose_model is not None:
            stack.callback(pose_model.close)
        scorer = CardScorer.from_project(project, card, checks, pose_model)
        return [score_one(scorer, cell, Path(file)) for file in files]
