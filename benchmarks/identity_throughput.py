"""Identity scoring throughput: a plain face_recognition script against FLENwheel's scorer, per detector.

Plain: detect (HOG, upsample 1) and encode on the full-size image, as face_recognition's README
does. Ours: ``IdentityScorer.score`` with each detector: ``hog`` detects on a copy whose longest
side is ``--detect-side``; ``mediapipe`` (the default where installed) runs BlazeFace on the
picture letterboxed to 128 px. Both encode with face_recognition's 128-d encoder at full size on
the box found. ``filter`` is what ``flenwheel filter`` runs: mediapipe, also reading the view and
expression of the same faces (face mesh, emotion model) for the loop's coverage. Same pictures for
all: the single-face shared photos letterboxed to 512x512, 1024x1024 and 1920x1080, pinned to one
CPU core (dlib and the TFLite interpreter then use one core each), so the figures are images per
second per core.

Then a batch: ``pool.score_files`` with every core this process may use (workers=0), on the
1024x1024 pictures written to files, with the filter's scorer, as ``flenwheel filter`` scores a
folder; it prints images/s in all and per core. The goal is at least 10 images per second per core
at 1024x1024.

    python benchmarks/identity_throughput.py [--faces ../shared/faces] [--repeat 3] [--batch-images N]
                                             [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from flenwheel.core.data.images import load_image, pil_to_array
from flenwheel.core.identity.faces import face_api
from flenwheel.core.identity.identity import IdentityScorer
from flenwheel.core.identity.pool import cpu_cores, score_files

SIZES = {"512x512": (512, 512), "1024x1024": (1024, 1024), "1920x1080": (1920, 1080)}
DETECTORS = ("hog", "mediapipe")
#: the columns: each detector's identity score, then what ``flenwheel filter`` runs (mediapipe, reading the
#: view and expression of the same faces as well)
METHODS = (*DETECTORS, "filter")
REFERENCE = "obama/obama.jpg"
SINGLE_FACE = [
    "obama/obama2.jpg",
    "obama/obama3.jpg",
    "obama/obama4.jpg",
    "obama/obama_small.jpg",
    "biden/biden.jpg",
    "biden/biden2.jpg",
    "alex_lacamoire/alex2.jpg",
    "lin_manuel_miranda/lin1.png",
]
BACKGROUND = (128, 128, 128)


def default_faces() -> Path:
    shared = Path(os.environ.get("FLENWHEEL_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    return shared / "faces"


def pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this OS)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to CPU core {core}"


def naive_distance(image: Image.Image, reference: np.ndarray) -> float | None:
    api = face_api()
    array = pil_to_array(image)
    boxes = api.face_locations(array, 1, "hog")
    codes = api.face_encodings(array, boxes)
    return float(np.linalg.norm(codes[0] - reference)) if codes else None


def one_pass(func, images: list[Image.Image]) -> tuple[float, list]:
    start = time.perf_counter()
    results = [func(image) for image in images]
    return len(images) / (time.perf_counter() - start), results


def compare(funcs: dict, images: list[Image.Image], repeat: int) -> dict[str, tuple[float, list]]:
    """Median images/s of every method; passes alternate so a busy machine slows all alike."""
    rates: dict[str, list[float]] = {name: [] for name in funcs}
    found: dict[str, list] = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            rate, found[name] = one_pass(func, images)
            rates[name].append(rate)
    return {name: (statistics.median(rates[name]), found[name]) for name in funcs}


def run(faces: Path, repeat: int, detect_side: int, quick: bool) -> dict:
    photos = [load_image(faces / name) for name in (SINGLE_FACE[:3] if quick else SINGLE_FACE)]
    scorers = {d: IdentityScorer.from_paths([faces / REFERENCE], detect_side=detect_side, model=d) for d in DETECTORS}
    scorers["filter"] = scorers["mediapipe"].reading_instruments()
    reference = scorers["hog"].references.references[0].encoding
    naive_distance(photos[0], reference)  # warm up caches and lazy model state
    for scorer in scorers.values():
        scorer.score(photos[0])
    funcs = {"plain": lambda im: naive_distance(im, reference)}
    funcs |= {d: (lambda im, s=s: s.score(im).distance) for d, s in scorers.items()}
    rows = []
    for label, size in SIZES.items():
        images = [ImageOps.pad(photo, size, Image.Resampling.LANCZOS, color=BACKGROUND) for photo in photos]
        measured = compare(funcs, images, repeat)
        plain_rate, plain = measured["plain"]
        row = {"size": label, "images": len(images), "plain_images_per_s": round(plain_rate, 2)}
        for name in METHODS:
            rate, distances = measured[name]
            moved = [abs(a - b) for a, b in zip(plain, distances, strict=True) if a is not None and b is not None]
            row[name] = {"images_per_s": round(rate, 2), "ratio_to_plain": round(rate / plain_rate, 2),
                         "faces_found": sum(d is not None for d in distances),
                         "max_distance_change": round(max(moved), 4) if moved else None}
        row["faces_found_plain"] = sum(d is not None for d in plain)
        rows.append(row)
    return {"detect_side": detect_side, "repeat": repeat, "rows": rows}


def batch(faces: Path, quick: bool, cores: set[int] | None, images: int) -> dict:
    """Every core on a folder of 1024x1024 files, through the pool ``flenwheel filter`` uses."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    photos = [load_image(faces / name) for name in (SINGLE_FACE[:3] if quick else SINGLE_FACE)]
    scorer = IdentityScorer.from_paths([faces / REFERENCE], model="mediapipe").reading_instruments()
    count = cpu_cores()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for copy in range(max(1, -(-(images or 6 * count) // len(photos)))):
            for index, photo in enumerate(photos):
                path = Path(folder) / f"{copy}_{index}.png"
                ImageOps.pad(photo, (1024, 1024), color=BACKGROUND).save(path)
                paths.append(path)
        start = time.perf_counter()
        scores = score_files(scorer, paths, workers=0)
        seconds = time.perf_counter() - start
    rate = len(paths) / seconds
    return {"cores": count, "images": len(paths), "faces_found": sum(s.distance is not None for s in scores),
            "images_per_s": round(rate, 2), "images_per_s_per_core": round(rate / count, 2),
            "seconds_including_worker_start": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=Path, default=default_faces(), help="The shared face photos folder.")
    parser.add_argument(
        "--repeat", type=int, default=3, help="Timed passes per size (the median is reported)."
    )
    parser.add_argument("--detect-side", type=int, default=512, help="HOG's detection copy's longest side.")
    parser.add_argument(
        "--quick", action="store_true", help="3 photos and 1 pass: a smoke run, not a measurement."
    )
    parser.add_argument("--all-cores", action="store_true", help="Do not pin to one core.")
    parser.add_argument("--no-batch", action="store_true", help="Skip the every-core batch.")
    parser.add_argument("--batch-images", type=int, default=0, metavar="N",
                        help="Pictures in the batch (default: 6 per core; more spreads the workers' start).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    if not args.faces.is_dir():
        parser.error(f"{args.faces} not found; pass --faces or set FLENWHEEL_SHARED")
    all_cores = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    pinning = "all cores" if args.all_cores else pin_one_core()
    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    result = run(args.faces, 1 if args.quick else args.repeat, args.detect_side, args.quick)
    result["cpu"] = pinning
    result["batch"] = None if args.no_batch else batch(args.faces, args.quick, all_cores, args.batch_images)
    result["load_average"] = [load_before, round(os.getloadavg()[0], 2) if load_before is not None else None]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"identity throughput, {pinning}, HOG detect side {args.detect_side}, "
        f"median of {result['repeat']} alternating passes, 1-min load average "
        f"{result['load_average'][0]} -> {result['load_average'][1]} on {os.cpu_count()} CPUs"
    )
    print(f"{'size':10s} {'images':>6s} {'plain img/s':>12s} " + " ".join(
        f"{d + ' img/s':>16s} {'ratio':>6s} {'faces':>5s} {'max |d chg|':>11s}" for d in METHODS))
    for row in result["rows"]:
        cells = " ".join(f"{row[d]['images_per_s']:16.2f} {row[d]['ratio_to_plain']:5.2f}x {row[d]['faces_found']:5d} "
                         f"{row[d]['max_distance_change']!s:>11s}" for d in METHODS)
        print(f"{row['size']:10s} {row['images']:6d} {row['plain_images_per_s']:12.2f} {cells}")
    if result["batch"]:
        b = result["batch"]
        print(f"batch, filter (mediapipe + readings), 1024x1024, {b['cores']} cores (workers=0): "
              f"{b['images']} images in "
              f"{b['seconds_including_worker_start']} s = {b['images_per_s']} images/s, "
              f"{b['images_per_s_per_core']} per core (worker start included); faces found {b['faces_found']}")


if __name__ == "__main__":
    main()
