"""When the flywheel stops: the model card passes, or going on cannot help.

The rules, checked after every finished turn, first match wins:

1. the verified first-try success of the turn's model card reaches the target (unverified cells,
   e.g. an expression nobody has judged, never count; see ``benchmark.results.outcome``);
2. no pristine image was picked in the turn, so the next character LoRA would learn nothing new;
3. a plateau: no gain in verified first-try success over the last ``patience`` turns;
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
    """Verified first-try rate of turn ``index`` minus the previous turn's (None for the first)."""
    return None if index == 0 else round(_rate(turns[index]) - _rate(turns[index - 1]), 4)


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
    if len(turns) > patience and rate <= _rate(turns[-1 - patience]):
        return (f"plateau: no gain in verified first-try success over {patience} turns "
                f"({_rate(turns[-1 - patience]):.0%} -> {rate:.0%})")
    if len(turns) >= max_turns:
        return f"max_turns reached ({max_turns})"
    return None
