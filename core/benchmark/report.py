"""report.html: one self-contained page (images embedded as data URIs) per benchmark run.

It shows the card, the rates, which checks were automatic and which were left to a person, a
table of every cell and try with its checks and verdict, the failures with their reasons, the
run's settings and, when the LoRA was trained in the project, how it trained: its loss curve and
its newest training samples. The page is the Jinja2 template ``report.html.j2``; the v1 -> v2
comparison page (``compare.html.j2``) shares its frame (``page.html.j2``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from ..data.html_pages import data_uri, render_page
from .model_card import CHECKS

THUMB = 160
TEMPLATES = Path(__file__).resolve().parent

ImageLoader = Callable[[str], Image.Image]


def render(template: str, title: str, **context: Any) -> str:
    """A benchmark page from its template, in the shared frame."""
    return render_page(TEMPLATES, template, title=title, thumb=THUMB, **context)


def _rates(summary: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    groups = (("rows (expression)", summary["rows"]), ("columns (angle)", summary["columns"]),
              ("poses", {"all poses": summary["poses"]}))
    return [(group, name, rate) for group, values in groups for name, rate in values.items()]


def _identity_how(results: dict[str, Any]) -> str:
    """The identity model and tolerance this card was judged with, and where the tolerance came from."""
    scoring = results.get("settings", {}).get("scoring") or {}
    tolerance = scoring.get("identity_tolerance")
    parts = [f"model: {scoring['identity_model']}"] if scoring.get("identity_model") else []
    if tolerance and tolerance["from"] == "card":
        parts.append(f"tolerance {tolerance['value']:.2f} (the card's identity_tolerance)")
    elif tolerance:
        parts.append(f"tolerance {tolerance['value']:.2f} (from the spread of {tolerance['references']} "
                     f"sources: {tolerance['note']})")
    return "; ".join(parts)


def _checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in CHECKS:
        meta = results["checks"][name]
        how = meta["how"] if meta["by"] != "human" else f"left to the human verdict: {meta.get('status')}"
        if name == "identity" and _identity_how(results):
            how = f"{how}; {_identity_how(results)}"
        rows.append({"name": name, "by": meta["by"], "how": how, "counts": results["summary"]["checks"][name]})
    return rows


def _rows(results: dict[str, Any], load: ImageLoader) -> list[dict[str, Any]]:
    rows = []
    for cell in results["cells"]:
        for entry in cell["tries"]:
            css = "ok" if entry["success"] else "unverified" if entry.get("outcome") == "unverified" else "bad"
            picture = data_uri(load(entry["file"]), THUMB * 2) if entry["status"] == "done" else None
            rows.append({"cell": cell, "entry": entry, "css": css, "picture": picture})
    return rows


def _first_tries(results: dict[str, Any], outcome: str) -> list[dict[str, Any]]:
    firsts = [(cell, cell["tries"][0]) for cell in results["cells"] if cell["tries"]]
    return [(cell, first) for cell, first in firsts if first.get("outcome", "failure") == outcome]


def _training(run_dir: Path | None, samples_shown: int = 4) -> dict[str, Any] | None:
    """The LoRA's loss curve (raw and averaged) and newest samples, from its run folder."""
    from ...trainers.protocol import LOG_FILE
    from ..training.loss_plot import plot_losses

    if run_dir is None or not (run_dir / LOG_FILE).is_file():
        return None
    samples = sorted((run_dir / "samples").glob("*.png"))[-samples_shown:]
    return {"folder": str(run_dir), "samples_folder": str(run_dir / "samples"),
            "plot": data_uri(plot_losses(run_dir, title=f"{run_dir.name} loss")),
            "samples": [(data_uri(Image.open(p).convert("RGB"), 256), p.name) for p in samples]}


def render_report(results: dict[str, Any], card: Image.Image, load: ImageLoader,
                  run_dir: Path | None = None) -> str:
    """The run's report page (see the module docstring)."""
    return render(
        "report.html.j2", f"Model card {results['lora_version']}", results=results,
        card=data_uri(card, quality=88), rates=_rates(results["summary"]), checks=_checks(results),
        unverified=[(c["label"], f["unverified"]) for c, f in _first_tries(results, "unverified")],
        failures=[(c["label"], f["seed"], f["failures"]) for c, f in _first_tries(results, "failure")],
        check_names=CHECKS, rows=_rows(results, load), settings=json.dumps(results["settings"], indent=2),
        training=_training(run_dir),
    )
