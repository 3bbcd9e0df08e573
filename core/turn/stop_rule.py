"""When the flywheel stops: the model card passes, or going on cannot help.

The rules, checked after every finished turn, first match wins:

1. the verified first-try success of the turn's model card reaches the target (unverified cells,
   e.g. an expression nobody has judged, never count; see ``benchmark.results.outcome``);
2. no pristine image was picked in the turn, so the next character LoRA would learn nothing new;
3. a plateau: no gain in verified first-try success over the last ``patience`` turns that made a model
   card; a turn without a card measured nothing, so it neither ends a plateau nor counts as 0%;
4. ``max_turns`` turns are done.
"""

from __future__ import annotations

from typing import Any


def first_try(results: dict[str, Any], target: float | None) -> dict[str, Any]:
    """The turn's first-try figures from a model card's results.json, verified and unverified apart."""
    summary = results["summary"]
    first = summary["first_try"]
    return {"verified": first["successes"], "unverified": summary.get("first_try_unverified", 0),
            "cells": first["cells"], "rate": first["rate"],
            "target": target if target is not None else summary["target"],
            "card": results["lora_version"]}


def _rate(turn: dict[str, Any]) -> float:
    return (turn.get("first_try") or {}).get("rate") or 0.0


def gain(turns: list[dict[str, Any]], index: int) -> float | None:
    """Verified first-try rate of turn ``index`` minus the previous turn's (None for the first, or when
    either turn has no model card)."""
    if index == 0 or not turns[index].get("first_try") or not turns[index - 1].get("first_try"):
        return None
    return round(_rate(turns[index]) - _rate(turns[index - 1]), 4)


def _plateau(turns: list[dict[str, Any]], patience: int) -> str | None:
    """No gain over the last ``patience`` carded turns; None unless the newest turn has a card."""
    carded = [turn for turn in turns if turn.get("first_try")]
    if not turns[-1].get("first_try") or len(carded) <= patience:
        return None
    before, rate = _rate(carded[-1 - patience]), _rate(carded[-1])
    if rate > before:
        return None
    return (f"plateau: no gain in verified first-try success over {patience} turns with a model card "
            f"({before:.0%} -> {rate:.0%})")


def stop_reason(turns: list[dict[str, Any]], target: float, patience: int, max_turns: int) -> str | None:
    """Why the loop stops after the finished ``turns`` (None: run another turn)."""
    if not turns:
        return None
    last = turns[-1]
    rate = _rate(last)
    if last.get("first_try") and rate >= target:
        return (f"target reached: verified first-try success {rate:.0%} >= {target:.0%} "
                f"at turn {last['turn']}")
    if last.get("images", {}).get("pristine") == 0:
        return f"no pristine image was picked in turn {last['turn']}: the next LoRA would learn nothing new"
    plateau = _plateau(turns, patience)
    if plateau:
        return plateau
    if len(turns) >= max_turns:
        return f"max_turns reached ({max_turns})"
    return None
