"""The scoreboard: per-cell, per-try results with verdicts, the aggregate rates, and the files.

The honest rule (``outcome``, the one rule the card, the report, the comparison and the flywheel's
stop rule use): a try is a **success** only when nothing failed and every criterion its cell names
was verified. Identity, face count, resolution, sharpness and head angle are verified by their
automatic check passing; body pose by its automatic check (MediaPipe, validated on the labelled
photos in tests/data/pose) passing; expression by its check passing, which it does only for an
expression measured at 90% precision or more (``validation.yaml``), else by a person. A check that
could not measure (status ``not measured``: no face found, a face too small, a runtime missing) is
never a failure: its criterion is unverified. A person's ``correct`` verifies every criterion; an
auto-review verdict (demo) verifies nothing. A try with nothing failed but a criterion left
unverified is **unverified**: counted apart and never towards the target. Only a measured
disagreement (a check's ``fail``), an ``incorrect`` verdict or a try never generated is a **failure**.
The rates are over all cells of the card:

- first-try success rate: try 0 of each cell; the card's target (80%) is judged on it;
- any-of-k success rate: a cell succeeds when any of its k tries does;
- per row (expression) and per column (angle) of the portrait grid, and for the poses.

``build_results`` reads everything from the benchmark dataset (records, their stored checks, the
card kept in its info) and the review store, so ``write_outputs`` can refresh results.json,
model_card.png and report.html after a reviewer's verdicts without loading a model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..data.atomic import atomic_write_bytes, atomic_write_json
from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError
from ..data.images import load_image, png_bytes
from ..data.project import Project
from ..data.records import ImageRecord, utc_now
from ..review.placement import place
from ..review.stages import AUTO_REVIEWER, reason_title
from ..review.store import Decision, ReviewStore
from .model_card import CHECKS, Cell
from .run import STAGE, benchmark_label, record_try_key, try_key

RESULTS_FORMAT = 1
RESULTS_FILE = "results.json"
CARD_FILE = "model_card.png"
REPORT_FILE = "report.html"
HOW = {
    "identity": "face_recognition distance of the largest face to the closest source face, at most the tolerance "
                "(over it fails only at the views identity was validated at)",
    "one_face": "exactly one face found (BlazeFace by default; none found is not measured)",
    "resolution": "both sides at least the card's min_side",
    "sharpness": "Laplacian variance at or above the floor calibrated on the sources",
    "head_angle": "yaw from the 468-point face mesh, read as front / half / profile and left / right",
    "expression": "fer's emotion model; automatic only for expressions measured at 90%+ precision",
    "body_pose": "MediaPipe Pose landmarks read as t-pose / standing / sitting and front / side view",
}


def find_label_dataset(project: Project, label: str) -> DatasetVersion:
    """The newest benchmark dataset made for ``label`` (``char_v1``), with a clear error when none is."""
    wanted = benchmark_label(label)
    for version in reversed(project.versions(STAGE)):
        dataset = DatasetVersion(project, STAGE, version)
        if dataset.exists() and dataset.load().info.get("lora_label") == wanted:
            return dataset
    raise FlenwheelError(
        f"no model card benchmark of {wanted} in {project.root} yet; run: flenwheel benchmark run "
        f"{project.root} --lora {wanted}"
    )


AUTOMATIC = ("identity", "one_face", "resolution", "sharpness", "head_angle", "expression", "body_pose")
Outcome = Literal["success", "unverified", "failure"]


def named_criteria(cell: Cell) -> list[str]:
    """What the cell's prompt asks for and must be verified: its checks, plus expression / body pose."""
    named = [name for name in cell.checks if name != "head_angle" or cell.angle]
    if cell.expression and "expression" not in named:
        named.append("expression")
    if cell.kind == "pose" and "body_pose" not in named:
        named.append("body_pose")
    return named


def unverified_criteria(named: list[str], checks: dict[str, Any], verdict: dict[str, Any] | None) -> list[str]:
    """The named criteria nothing verified: no passing automatic check and no human ``correct``."""
    if verdict and verdict["label"] == "correct" and verdict.get("reviewer") != AUTO_REVIEWER:
        return []
    return [name for name in named
            if name not in AUTOMATIC or checks.get(name, {}).get("status") != "pass"]


def outcome(failures: list[str], unverified: list[str]) -> Outcome:
    """The one rule: any failure fails; else success only when nothing is left unverified."""
    if failures:
        return "failure"
    return "unverified" if unverified else "success"


def judge(cell: Cell, checks: dict[str, Any], verdict: dict[str, Any] | None) -> tuple[list[str], list[str], Outcome]:
    """Failures, unverified criteria and the outcome of one scored try: the one rule in one place."""
    failures = [f"{name}: {checks[name].get('detail') or 'failed'}" for name in CHECKS
                if checks.get(name, {}).get("status") == "fail"]
    if not checks:
        failures.append("not scored yet")
    if verdict and verdict["label"] != "correct":
        why = f" ({verdict['reason_text']})" if verdict.get("reason_text") else ""
        failures.append(f"human: {verdict['label']}{why}")
    unverified = [] if failures else unverified_criteria(named_criteria(cell), checks, verdict)
    return failures, unverified, outcome(failures, unverified)


def check_line(checks: dict[str, Any]) -> str:
    """One line for a progress log: which checks failed and which could not measure, or "passes"."""
    failed = [name for name, c in checks.items() if c["status"] == "fail"]
    unmeasured = [name for name, c in checks.items() if c["status"] == "not measured"]
    parts = ([f"fails {', '.join(failed)}"] if failed else []) + (
        [f"not measured: {', '.join(unmeasured)}"] if unmeasured else [])
    return "; ".join(parts) or "passes"


def _verdict(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {"label": decision.label, "reason": decision.reason, "reason_text": reason_title(decision.reason),
            "reviewer": decision.reviewer, "at": decision.at}


def _try_entry(project: Project, dataset: DatasetVersion, cell: Cell, index: int, record: ImageRecord | None,
               verdicts: dict[str, Decision], fingerprint: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"try": index, "seed": cell.seeds[index]}
    if record is None:
        return entry | {"status": "missing", "image_id": None, "file": None, "checks": {}, "verdict": None,
                        "success": False, "outcome": "failure", "unverified": [],
                        "failures": ["not generated yet"]}
    stored = record.scores.get("benchmark") or {}
    checks = stored.get("checks") or {}
    verdict = _verdict(verdicts.get(record.id))
    failures, unverified, result = judge(cell, checks, verdict)
    return entry | {
        "status": "done",
        "image_id": record.id,
        "file": dataset.image_path(record).relative_to(project.root).as_posix(),
        "checks": checks,
        "stale_scores": bool(checks) and stored.get("fingerprint") != fingerprint,
        "verdict": verdict,
        "success": result == "success",
        "outcome": result,
        "unverified": unverified,
        "failures": failures,
    }


def _rate(successes: int, count: int) -> dict[str, Any]:
    return {"successes": successes, "cells": count, "rate": round(successes / count, 4) if count else 0.0}


def _group(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"first_try": _rate(sum(c["first_try_success"] for c in cells), len(cells)),
            "first_try_unverified": sum(c.get("first_try_outcome") == "unverified" for c in cells),
            "any_of_k": _rate(sum(c["any_success"] for c in cells), len(cells))}


def _check_counts(cells: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {}
    for name in CHECKS:
        statuses = [c["tries"][0]["checks"].get(name, {}).get("status") for c in cells if c["tries"]]
        passed, failed, unmeasured = statuses.count("pass"), statuses.count("fail"), statuses.count("not measured")
        counts[name] = {"pass": passed, "fail": failed, "not measured": unmeasured,
                        "n/a": len(statuses) - passed - failed - unmeasured,
                        "pass_rate": round(passed / (passed + failed), 4) if passed + failed else None}
    return counts


def _summary(cells: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    card = info["card"]
    portraits = [c for c in cells if c["kind"] == "portrait"]
    tries = [t for c in cells for t in c["tries"]]
    first = [c["tries"][0] for c in cells if c["tries"]]
    first_try = _rate(sum(c["first_try_success"] for c in cells), len(cells))
    return {
        "cells": len(cells),
        "tries": card["tries"],
        "images_expected": len(tries),
        "images_done": sum(t["status"] == "done" for t in tries),
        "complete": all(t["status"] == "done" for t in tries),
        "first_try": first_try,
        "first_try_unverified": sum(t.get("outcome") == "unverified" for t in first),
        "any_of_k": _rate(sum(c["any_success"] for c in cells), len(cells)),
        "target": card["target"],
        "target_met": first_try["rate"] >= card["target"],
        "rows": {e: _group([c for c in portraits if c["expression"] == e]) for e in card["expressions"]},
        "columns": {a: _group([c for c in portraits if c["angle"] == a]) for a in card["angles"]},
        "poses": _group([c for c in cells if c["kind"] == "pose"]),
        "checks": _check_counts(cells),
        "human": {
            "first_try_cells_with_verdict": sum(t["verdict"] is not None for t in first),
            "first_try_correct": sum(bool(t["verdict"]) and t["verdict"]["label"] == "correct" for t in first),
            "images_with_verdict": sum(t.get("verdict") is not None for t in tries),
            "first_try_successes_without_verdict": sum(t["success"] and t["verdict"] is None for t in first),
            "first_try_unverified_criteria": sorted({n for t in first for n in t.get("unverified", [])}),
        },
    }


def _checks_meta(scoring: dict[str, Any]) -> dict[str, Any]:
    """Who judged each check in this run, and how (the report's "automatic or human" table)."""
    judged = scoring.get("judged_by") or {}
    meta = {}
    for name in CHECKS:
        by = judged.get(name, "unknown")
        meta[name] = {"by": by, "automatic": by == "automatic", "how": HOW[name]}
    meta["body_pose"]["status"] = scoring.get("body_pose")
    return meta


def build_results(project: Project, dataset: DatasetVersion) -> dict[str, Any]:
    """results.json's content for one benchmark dataset (see the module docstring)."""
    metadata = dataset.load()
    info = metadata.info
    if "card" not in info:
        raise FlenwheelError(f"{dataset.label} was not written by flenwheel benchmark (no card in its info)")
    verdicts = ReviewStore(project).current("benchmark", dataset.version)
    recorded = {record_try_key(r): r for r in metadata.images}
    fingerprint = info.get("scoring", {}).get("fingerprint")
    cells = []
    for data in info["card"]["cells"]:
        cell = Cell.from_json(data)
        tries = [_try_entry(project, dataset, cell, i, recorded.get(try_key(cell, seed)), verdicts, fingerprint)
                 for i, seed in enumerate(cell.seeds)]
        cells.append(data | {"label": cell.label, "tries": tries,
                             "first_try_success": bool(tries) and tries[0]["success"],
                             "first_try_outcome": tries[0]["outcome"] if tries else "failure",
                             "any_success": any(t["success"] for t in tries),
                             "successful_tries": sum(t["success"] for t in tries)})
    return {
        "format": RESULTS_FORMAT,
        "created": utc_now(),
        "project": project.config.name,
        "lora_version": info["lora_label"],
        "dataset": dataset.label,
        "settings": {"signature": info.get("signature"), "card_sources": info["card"].get("sources"),
                     "render": info["card"].get("render"), "base_seed": info["card"].get("base_seed"),
                     "scoring": info.get("scoring"), "human_labels": ["correct", "incorrect"]},
        "checks": _checks_meta(info.get("scoring", {})),
        "summary": _summary(cells, info),
        "cells": cells,
    }


@dataclass
class BenchmarkOutputs:
    folder: Path
    results: dict[str, Any]
    results_path: Path
    card_path: Path
    report_path: Path

    def lines(self) -> list[str]:
        s = self.results["summary"]
        first, anyk = s["first_try"], s["any_of_k"]
        met = "met" if s["target_met"] else "NOT met"
        human = s["human"]
        return [
            f"first try: {first['successes']}/{first['cells']} = {first['rate']:.0%} "
            f"(target {s['target']:.0%}: {met}); any of {s['tries']}: {anyk['successes']}/{anyk['cells']} "
            f"= {anyk['rate']:.0%}",
            f"unverified first tries (not counted): {s.get('first_try_unverified', 0)}; "
            f"human verdicts: {human['first_try_cells_with_verdict']} of {first['cells']} first tries, "
            f"{human['images_with_verdict']} images in all"
            + ("" if s["complete"] else f"; {s['images_expected'] - s['images_done']} tries not generated yet"),
            f"results: {self.results_path}",
            f"card:    {self.card_path}",
            f"report:  {self.report_path}",
        ]


def write_outputs(project: Project, label: str, dataset: DatasetVersion | None = None) -> BenchmarkOutputs:
    """Write results.json, model_card.png and report.html into ``benchmarks/<label>/`` (atomically)."""
    from .render import render_card
    from .report import render_report

    dataset = dataset or find_label_dataset(project, label)
    place(project, "benchmark", dataset.version)
    results = build_results(project, dataset)
    folder = project.benchmark_dir(results["lora_version"])
    folder.mkdir(parents=True, exist_ok=True)
    card = render_card(results, lambda rel: load_image(project.root / rel))
    card_path = folder / CARD_FILE
    atomic_write_bytes(card_path, png_bytes(card, {"benchmark": results["summary"]}))
    report_path = folder / REPORT_FILE
    label = str(results["lora_version"])
    run_dir = project.flux_lora_dir(label.removeprefix("char_")) if re.fullmatch(r"char_v[0-9]+", label) else None
    html = render_report(results, card, lambda rel: load_image(project.root / rel),
                         run_dir if run_dir is not None and run_dir.is_dir() else None)
    atomic_write_bytes(report_path, html.encode("utf-8"))
    results_path = folder / RESULTS_FILE
    atomic_write_json(results_path, results)
    return BenchmarkOutputs(folder, results, results_path, card_path, report_path)


def load_results(path: str | Path) -> dict[str, Any]:
    """A results.json, with a message naming the file when it is missing or not one."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FlenwheelError(f"{file} does not exist; run flenwheel benchmark run first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise FlenwheelError(f"{file} is not a readable results file ({exc})") from None
    if not isinstance(data, dict) or "cells" not in data or data.get("format", 0) > RESULTS_FORMAT:
        raise FlenwheelError(f"{file} is not a model card results file this FLENwheel understands")
    return data
