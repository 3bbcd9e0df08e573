"""Identity on labelled real photos: how often another person passes (look-alike) and the same person fails (miss).

Photos (read in place, never copied): ``faces-views/views/lfw_same_person`` (8 people x front, half-left,
half-right), ``faces-views/expressions`` (52 people; neutral / smiling / angry / sad, near-frontal) and
``faces`` (obama, biden, alex_lacamoire, lin_manuel_miranda), one identity per person name. The AFLW2000
view photos carry no identity label (two of them show the same woman), so they serve only as strangers
against the named people, at every view including profiles. Left out: byte-identical copies, the
two-face group photo, the RGBA copy of obama2, and ``neutral__Charles_Moose.jpg`` (a different man, by eye).

Every photo goes through the pack's own path (``find_faces`` at the card's detection settings, the
largest face's 128-d encoding), and a distance is what the card computes: the minimum over references.

- miss, per view: a photo against every other photo of its person; missed when the closest is farther
  than the tolerance (no face: counted apart, identity cannot be measured);
- nearest stranger: the same photo against each other named person's photos; it passes when any of them
  is within the tolerance (the most similar of ~56 people plays the look-alike);
- stranger pairs: the share of (photo, other person) pairs within the tolerance.

The suggested tolerance is the one on a 0.01 grid with the fewest errors of both kinds (miss rate plus
nearest-stranger rate, over every photo; the smaller on a tie): a miss fails a correct card cell, a
look-alike passes a wrong one. Then the calibration rule (``ReferenceSet.calibrated_tolerance``) is checked:
each person with at least 4 photos, every photo held out in turn, the rest as sources.

    python benchmarks/identity_separation.py [--shared ../shared] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flenwheel.core.data.images import load_image
from flenwheel.core.identity.faces import DetectionSettings, find_faces
from flenwheel.core.identity.references import DEFAULT_TOLERANCE, Reference, ReferenceSet

TOLERANCES = (0.45, 0.5, 0.52, 0.55, 0.6)
GRID = np.round(np.arange(0.40, 0.70, 0.01), 2)
#: The faces/ photos that are not frontal, by eye (see benchmarks/model_card_checks.py).
FACES_VIEWS = {"obama/obama2.jpg": "half-left", "alex_lacamoire/alex1.png": "half-right"}
EXCLUDED = {
    "faces/group/obama_biden.jpg": "two faces",
    "faces/obama/obama2_rgba.png": "RGBA copy of obama2.jpg",
    "faces-views/expressions/neutral/neutral__Charles_Moose.jpg": "shows a different man than the other "
                                                                   "Charles_Moose photos (checked by eye)",
}


@dataclass
class Photo:
    path: str
    person: str
    view: str
    named: bool
    encoding: np.ndarray | None


def _label(rel: Path) -> tuple[str, str, bool]:
    """(person, view, named): the identity and view a photo is labelled with."""
    parts = rel.parts
    if parts[0] == "faces":
        return parts[1], FACES_VIEWS.get("/".join(parts[1:]), "front"), True
    if parts[2] == "lfw_same_person":
        return parts[3], parts[4].split("__")[0], True
    if parts[1] == "views":
        return rel.stem, parts[3], False
    expression, person = rel.stem.split("__")
    return person, f"front ({expression})", True


def collect(shared: Path, settings: DetectionSettings) -> list[Photo]:
    """Every labelled photo, encoded the way the card encodes a picture."""
    photos, seen = [], set()
    files = sorted((shared / "faces-views").rglob("*.jpg")) + sorted(
        p for p in (shared / "faces").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    for file in files:
        rel = file.relative_to(shared)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if rel.as_posix() in EXCLUDED or digest in seen:
            continue
        seen.add(digest)
        faces = find_faces(load_image(file), landmarks=False, encodings=True, settings=settings)
        photos.append(Photo(rel.as_posix(), *_label(rel), faces[0].encoding if faces else None))
    return photos


def _closest(photo: Photo, others: list[Photo]) -> float:
    return float(min(np.linalg.norm(o.encoding - photo.encoding) for o in others))


def measure(photos: list[Photo]) -> dict:
    """Per view: genuine closest distances, nearest-stranger distances and stranger-pair distances."""
    people: dict[str, list[Photo]] = defaultdict(list)
    for p in photos:
        if p.named and p.encoding is not None:
            people[p.person].append(p)
    views: dict[str, dict] = defaultdict(lambda: {"photos": 0, "no_face": 0, "genuine": [], "nearest": [],
                                                  "pairs": []})
    for p in photos:
        row = views[p.view]
        row["photos"] += 1
        if p.encoding is None:
            row["no_face"] += 1
            continue
        own = [o for o in people.get(p.person, []) if o is not p] if p.named else []
        if own:
            row["genuine"].append(_closest(p, own))
        strangers = [_closest(p, refs) for name, refs in people.items() if name != p.person or not p.named]
        row["nearest"].append(min(strangers))
        row["pairs"] += strangers
    return views


def _rates(row: dict, tolerance: float) -> tuple[float | None, float | None, float | None]:
    genuine, nearest, pairs = (np.asarray(row[k]) for k in ("genuine", "nearest", "pairs"))
    miss = float((genuine > tolerance).mean()) if len(genuine) else None
    return (miss, float((nearest <= tolerance).mean()) if len(nearest) else None,
            float((pairs <= tolerance).mean()) if len(pairs) else None)


def fewest_errors(merged: dict) -> float:
    """The grid tolerance with the smallest miss rate + nearest-stranger rate (the smaller on a tie)."""
    totals = [sum(_rates(merged, float(t))[:2]) for t in GRID]
    return float(GRID[int(np.argmin(np.round(totals, 9)))])


def calibration_check(photos: list[Photo], settings: DetectionSettings) -> dict:
    """Held-out photos of people with >= 4 photos: the fixed default against the sources' calibration."""
    people: dict[str, list[Photo]] = defaultdict(list)
    for p in photos:
        if p.named and p.encoding is not None:
            people[p.person].append(p)
    strangers = [p for p in photos if p.encoding is not None]
    result = {"default": [0, 0, 0, 0], "sources": [0, 0, 0, 0], "values": []}
    for person, own in people.items():
        if len(own) < 4:
            continue
        for held in own:
            sources = [o for o in own if o is not held]
            refs = ReferenceSet(settings, [Reference(o.path, o.path, o.encoding) for o in sources])
            calibrated = refs.calibrated_tolerance().value
            result["values"].append(calibrated)
            others = [_closest(s, sources) for s in strangers if not (s.named and s.person == person)]
            for name, tolerance in (("default", DEFAULT_TOLERANCE), ("sources", calibrated)):
                counts = result[name]
                counts[0] += _closest(held, sources) > tolerance
                counts[1] += 1
                counts[2] += sum(d <= tolerance for d in others)
                counts[3] += len(others)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("FLENWHEEL_SHARED") or Path(__file__).resolve().parents[2] / "shared"
    parser.add_argument("--shared", type=Path, default=Path(default))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = DetectionSettings()  # the card's: HOG, 512 px detection copy, upsample 1
    start = time.perf_counter()
    photos = collect(args.shared, settings)
    views = measure(photos)
    order = sorted(views, key=lambda v: (not v.startswith("front"), v))
    merged = {k: [v for row in views.values() for v in row[k]] for k in ("genuine", "nearest", "pairs")}
    suggested = fewest_errors(merged)
    calibration = calibration_check(photos, settings)
    seconds = time.perf_counter() - start
    if args.json:
        out = {"photos": len(photos), "people": len({p.person for p in photos if p.named}), "suggested": suggested,
               "views": {v: {"photos": r["photos"], "no_face": r["no_face"], "genuine": len(r["genuine"]),
                             "rates": {str(t): dict(zip(("miss", "nearest_stranger", "stranger_pairs"),
                                                        _rates(r, t), strict=True)) for t in TOLERANCES}}
                         for v, r in views.items()},
               "calibration": calibration, "seconds": round(seconds, 1)}
        print(json.dumps(out, indent=2, default=float))
        return
    named = len({p.person for p in photos if p.named})
    print(f"{len(photos)} photos, {named} named people, encoded with face_recognition at {settings.tag} "
          f"in {seconds:.0f} s")
    print("\nmiss = same person farther than the tolerance from their closest other photo; nearest stranger = "
          "some other named person within it; pairs = (photo, other person) within it")
    head = "| view | photos | no face | same-person probes | " + " | ".join(
        f"miss / nearest stranger / pairs at {t}" for t in TOLERANCES) + " |"
    print(head)
    print("|" + "---|" * (4 + len(TOLERANCES)))
    rows = [(v, views[v]) for v in order] + [("all", merged | {"photos": len(photos), "no_face": sum(
        r["no_face"] for r in views.values())})]
    for view, row in rows:
        cells = [" / ".join(_pct(x) for x in _rates(row, t)) for t in TOLERANCES]
        print(f"| {view} | {row['photos']} | {row['no_face']} | {len(row['genuine'])} | " + " | ".join(cells) + " |")
    print(f"\nsuggested default (fewest misses + nearest-stranger passes): {suggested:.2f}; "
          f"the pack's DEFAULT_TOLERANCE is {DEFAULT_TOLERANCE}")
    values = calibration["values"]
    print(f"\ncalibration from sources ({len(values)} held-out photos of people with >= 4 photos; calibrated "
          f"tolerance min {min(values):.2f} / median {np.median(values):.2f} / max {max(values):.2f}):")
    for name in ("default", "sources"):
        miss, probes, passed, pairs = calibration[name]
        label = f"fixed {DEFAULT_TOLERANCE}" if name == "default" else "calibrated"
        print(f"  {label}: missed {miss}/{probes} ({miss / probes:.1%}); strangers accepted {passed}/{pairs} "
              f"({passed / pairs:.2%})")


if __name__ == "__main__":
    main()
