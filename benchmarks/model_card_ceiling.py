"""The model card's ceiling on labelled real photos: how often each automatic check passes a correct picture.

Every photo of ``../shared/faces-views`` is scored by the card's own ``CardScorer.score`` against the
cell its label names (``benchmark score``'s code path), with the card's built-in limits:

- views (AFLW2000-3D, 140 photos with a measured yaw, plus each photo mirrored with the side swapped):
  face found, one face, head angle, against ``<view>-neutral``;
- same-person views (LFW, 8 people x front / half-left / half-right, mild turns by eye) and the
  expression photos of people with two or more photos: identity, each photo against the person's
  other photos (leave one out);
- expressions (LFW, 30 photos each of neutral / smiling / angry / sad): expression, against
  ``front-<expression>``; and the precision of every reading (``--write`` stores that table in
  ``core/vision/validation.yaml``, which decides what is verified without a person).

Resolution and sharpness are properties of the generated file (1024 px renders), not of the
instruments, and are left out. From the rates, per cell, assuming the criteria fail independently:

- ceiling: P(a correct image gets no "fail" from any automatic check), summed over the 23 cells; a
  person's "correct" then verifies whatever automation left unverified;
- fully automatic: P(every criterion the cell names passes automatically), summed; no person at all.

Pose cells: body pose needs a mediapipe 0.10.21 environment (``--pose-python``) and is validated on
its own photos (tests/data/pose); without one it is left to a person and never fails, and identity
at full-body framing is not judged, so each pose cell counts 1 to the ceiling and 0 to the automatic count.

Run: python benchmarks/model_card_ceiling.py [--photos ../shared/faces-views] [--write] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, ImageOps

from flenwheel.core.benchmark.checks import CardScorer, SharpnessFloor
from flenwheel.core.benchmark.model_card import Card, Cell, load_card
from flenwheel.core.data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, MIRRORED_ANGLE
from flenwheel.core.identity.faces import DetectionSettings, find_faces
from flenwheel.core.identity.identity import IdentityScorer
from flenwheel.core.identity.references import Reference, ReferenceSet
from flenwheel.core.vision.validation import VALIDATION_FILE, Validation, load_validation

ROOT = Path(__file__).resolve().parents[1]
STATUSES = ("pass", "fail", "not measured")


def _scorer(card: Card, enabled: tuple[str, ...], validation: Validation) -> CardScorer:
    limits = card.limits
    detection = DetectionSettings(limits.detect_side, limits.face_detector)
    return CardScorer(limits, enabled, None, SharpnessFloor(0.0, None, 0, 0.0), detection=detection,
                      identity_note="not measured: no references", validation=validation)


def _load(photos: Path, name: str, mirror: bool = False) -> Image.Image:
    image = ImageOps.exif_transpose(Image.open(photos / name)).convert("RGB")
    return ImageOps.mirror(image) if mirror else image


def _tally(rows: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter] = defaultdict(Counter)
    for key, status in rows:
        table[key][status] += 1
    return {key: dict(counts) for key, counts in table.items()}


def measure_views(photos: Path, labels: list[dict[str, str]], card: Card, cells: dict[str, Cell],
                  validation: Validation) -> dict[str, Any]:
    """one_face and head_angle on every AFLW view photo and its mirror, against ``<view>-neutral``."""
    scorer = _scorer(card, ("one_face", "head_angle"), validation)
    one_face, angle, yaws = [], [], []
    for row in labels:
        if not row["file"].startswith("views/aflw2000/"):
            continue
        for mirror in (False, True):
            view = MIRRORED_ANGLE.get(row["view_word"], row["view_word"]) if mirror else row["view_word"]
            checks = scorer.score(_load(photos, row["file"], mirror), cells[f"{view}-neutral"])["checks"]
            one_face.append((view, checks["one_face"].status))
            angle.append((view, checks["head_angle"].status))
            yaws.append({"file": row["file"], "mirror": mirror, "view": view, "label_yaw": row["yaw_label"],
                         "read": checks["head_angle"].value, "status": checks["head_angle"].status})
    return {"one_face": _tally(one_face), "head_angle": _tally(angle), "readings": yaws}


def _people(labels: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """People with two or more LFW photos (views or expressions): identity can be measured on them."""
    people: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in labels:
        if not row["file"].startswith("views/aflw2000/"):
            people[row["identity"]].append(row)
    return {name: rows for name, rows in people.items() if len(rows) > 1}


def _photo_view(row: dict[str, str]) -> str:
    return row["view_word"] if row["file"].startswith("views/") else "front"


def measure_identity(photos: Path, labels: list[dict[str, str]], card: Card, cells: dict[str, Cell],
                     validation: Validation) -> dict[str, Any]:
    """Identity of each photo against the same person's other photos (leave one out), per view."""
    settings = DetectionSettings(card.limits.detect_side, card.limits.face_detector)
    scorer = _scorer(card, ("identity",), validation)
    rows = []
    for _person, person_rows in sorted(_people(labels).items()):
        encodings = {}
        for row in person_rows:
            faces = find_faces(_load(photos, row["file"]), landmarks=False, encodings=True, settings=settings)
            if faces:
                encodings[row["file"]] = faces[0].encoding
        for row in person_rows:
            others = [Reference(Path(f).name, f, e) for f, e in encodings.items() if f != row["file"]]
            if not others:
                continue
            scorer.identity = IdentityScorer(ReferenceSet(settings, others), card.limits.identity_tolerance,
                                             drop_outliers=False)
            view = _photo_view(row)
            check = scorer.score(_load(photos, row["file"]), cells[f"{view}-neutral"])["checks"]["identity"]
            rows.append((view, check.status))
    return {"identity": _tally(rows)}


def measure_expressions(photos: Path, labels: list[dict[str, str]], card: Card, cells: dict[str, Cell],
                        validation: Validation) -> dict[str, Any]:
    """The expression check against ``front-<label>``, and what each confident reading is worth."""
    scorer = _scorer(card, ("one_face", "expression"), validation)
    statuses, reads, one_face = [], [], []
    for row in labels:
        if not row["file"].startswith("expressions/"):
            continue
        scored = scorer.score(_load(photos, row["file"]), cells[f"front-{row['expression']}"])
        check = scored["checks"]["expression"]
        statuses.append((row["expression"], check.status))
        one_face.append((row["expression"], scored["checks"]["one_face"].status))
        reading = (scored["instruments"] or {}).get("expression")
        if reading and reading["confident"]:
            reads.append((reading["word"], row["expression"]))
    precision = {}
    for word in CARD_EXPRESSIONS:
        said = [label for read, label in reads if read == word]
        right = sum(label == word for label in said)
        precision[word] = {"reads": len(said), "right": right,
                           "precision": round(right / len(said), 4) if said else None}
    return {"expression": _tally(statuses), "one_face": _tally(one_face), "precision": precision,
            "confusion": _tally([(label, read) for read, label in reads])}


def _rate(table: dict[str, dict[str, int]], key: str, status: str) -> float | None:
    counts = table.get(key)
    if not counts:
        return None
    return counts.get(status, 0) / sum(counts.values())


def ceiling(views: dict[str, Any], identity: dict[str, Any], expressions: dict[str, Any], card: Card,
            cells: dict[str, Cell], validation: Validation) -> dict[str, Any]:
    """Expected cells passed without a false automatic failure, and verified with no person (see module doc)."""
    per_cell, total, automatic = {}, 0.0, 0.0
    for expression in card.expressions:
        for angle in card.angles:
            ok, auto = 1.0, 1.0
            for table, key in ((views["one_face"], angle), (views["head_angle"], angle),
                               (expressions["expression"], expression)):
                ok *= 1 - (_rate(table, key, "fail") or 0.0)
                auto *= _rate(table, key, "pass") or 0.0
            judged = angle in validation.identity_judged_views
            identity_fail = _rate(identity["identity"], angle, "fail") if judged else 0.0
            ok *= 1 - (identity_fail or 0.0)
            auto *= _rate(identity["identity"], angle, "pass") or 0.0
            per_cell[f"{angle}-{expression}"] = {"ceiling": round(ok, 3), "automatic": round(auto, 3)}
            total += ok
            automatic += auto
    for cell in cells.values():
        if cell.kind == "pose":
            per_cell[cell.id] = {"ceiling": 1.0, "automatic": 0.0}
            total += 1.0
    return {"cells": len(per_cell), "ceiling": round(total, 2), "fully_automatic": round(automatic, 2),
            "target_cells": card.target * len(per_cell), "per_cell": per_cell}


def _row(table: dict[str, dict[str, int]], key: str) -> str:
    counts = table.get(key, {})
    n = sum(counts.values())
    return f"{n:5d} " + " ".join(f"{counts.get(s, 0):>12d}" for s in STATUSES)


def print_report(report: dict[str, Any]) -> None:
    header = f"{'':22s}{'n':>5s} " + " ".join(f"{s:>12s}" for s in STATUSES)
    for title, table, keys in (
        ("one_face (views + mirrors)", report["views"]["one_face"], CARD_ANGLES),
        ("head_angle (views + mirrors)", report["views"]["head_angle"], CARD_ANGLES),
        ("identity (leave one out)", report["identity"]["identity"], CARD_ANGLES),
        ("one_face (expressions)", report["expressions"]["one_face"], CARD_EXPRESSIONS),
        ("expression", report["expressions"]["expression"], CARD_EXPRESSIONS),
    ):
        print(f"\n{title}\n{header}")
        for key in keys:
            if key in table:
                print(f"{key:22s}{_row(table, key)}")
    print("\nexpression readings (confident, >= 60%): precision on labelled photos")
    for word, row in report["expressions"]["precision"].items():
        share = "-" if row["precision"] is None else f"{row['precision']:.0%}"
        print(f"  {word:10s} read {row['reads']:3d} times, right {row['right']:3d}: {share}")
    result = report["ceiling"]
    print(f"\nceiling: {result['ceiling']:.1f} of {result['cells']} cells (target needs {result['target_cells']:.1f}); "
          f"fully automatic: {result['fully_automatic']:.1f} of {result['cells']}")
    print(f"seconds: {report['seconds']}")


def write_validation(precision: dict[str, Any], path: Path = VALIDATION_FILE) -> None:
    """Store the measured precision table the expression check reads (the rest of the file is kept)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expression"] = precision
    header = "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "faces-views")
    parser.add_argument("--write", action="store_true", help="store the expression precision in validation.yaml")
    parser.add_argument("--json", type=Path, help="also write the full report (every reading) here")
    args = parser.parse_args()
    labels = list(csv.DictReader((args.photos / "labels.csv").open(encoding="utf-8")))
    card = load_card()
    cells = {cell.id: cell for cell in card.cells("ohwx person", "ohwx")}
    start = time.perf_counter()
    expressions = measure_expressions(args.photos, labels, card, cells, load_validation())
    validation = load_validation()
    if args.write:
        write_validation(expressions["precision"])
        load_validation.cache_clear()
        validation = load_validation()
        expressions = measure_expressions(args.photos, labels, card, cells, validation)
    views = measure_views(args.photos, labels, card, cells, validation)
    identity = measure_identity(args.photos, labels, card, cells, validation)
    report = {"views": views, "identity": identity, "expressions": expressions,
              "ceiling": ceiling(views, identity, expressions, card, cells, validation),
              "seconds": round(time.perf_counter() - start, 1)}
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
