"""The flywheel report's aiming section: did the turns aim where the card failed, and did it work?

Per turn, from ``flywheel.json``: the training set's coverage (views x expressions, poses; counted
from measured or curated tags), the card's first-try success per column (view), row (expression)
and for the poses, the images this turn's generation gave each view, and the next turn's
allocation beside it, so a reader sees the aimed cells and then sees them move.
"""

from __future__ import annotations

from typing import Any

from ..data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES

OTHER = "other"


def _share(allocation: dict[str, Any] | None) -> dict[str, int] | None:
    return dict(allocation.get("by_view") or {}) if isinstance(allocation, dict) else None


def aim_rows(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per turn with what the template draws (missing parts are None: an older report)."""
    rows = []
    for turn in turns:
        coverage = turn.get("coverage") if isinstance(turn.get("coverage"), dict) else None
        card = turn.get("card") if isinstance(turn.get("card"), dict) else {}
        now, upcoming = _share(turn.get("allocation")), _share(turn.get("next_allocation"))
        if coverage is None and now is None and upcoming is None and not card:
            continue
        counts = (coverage or {}).get("grid", {}).get("counts")
        largest = max([*(now or {}).values(), *(upcoming or {}).values(), 1])
        rows.append({
            "turn": turn.get("turn"),
            "grid": {view: counts[i] if counts else None for i, view in enumerate(CARD_ANGLES)},
            "poses": (coverage or {}).get("poses") or {},
            "images": (coverage or {}).get("images"), "unmeasured": (coverage or {}).get("unmeasured"),
            "columns": card.get("columns") or {}, "rows": card.get("rows") or {}, "pose_rate": card.get("poses"),
            "card": card.get("label"), "now": now, "next": upcoming, "largest": largest,
            "budget": (turn.get("allocation") or {}).get("budget"),
            "lacking": ((turn.get("enrich_aim") or {}).get("lacking")),
        })
    return rows


CONTEXT = {"aim_views": (*CARD_ANGLES, OTHER), "aim_angles": CARD_ANGLES, "aim_expressions": CARD_EXPRESSIONS,
           "aim_poses": CARD_POSES}
