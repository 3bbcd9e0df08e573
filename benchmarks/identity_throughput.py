"""Identity scoring throughput: naive face_recognition use against FLENwheel's scorer.

Naive: detect (HOG, upsample 1) and encode on the full-size image, as face_recognition's README
does. Ours: ``IdentityScorer.score``, which detects on a copy whose longest side is
``--detect-side`` and encodes at full size. Both run on the same pictures, made from the
single-face shared photos letterboxed to 512x512, 1024x1024 and 1920x1080, pinned to one CPU core
(dlib's HOG is single-threaded; pinning keeps the encoder honest too).

It prints images per second for both, their ratio, and how far our distances to the reference
(obama/obama.jpg) move from the naive ones. The goal is at least 5 images/s at 1024x1024.

    python benchmarks/identity_throughput.py [--faces ../shared/faces] [--repeat 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from flenwheel.core.data.images import load_image, pil_to_array
from flenwheel.core.identity.faces import face_api
from flenwheel.core.identity.identity import IdentityScorer

SIZES = {"512x512": (512, 512), "1024x1024": (1024, 1024), "1920x1080": (1920, 1080)}
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


def compare(naive_func, ours_func, images: list[Image.Image], repeat: int) -> tuple[float, float, list, list]:
    """Median images/s of both methods; passes alternate so a busy machine slows both alike."""
    naive_rates, ours_rates = [], []
    for _ in range(repeat):
        rate, naive = one_pass(naive_func, images)
        naive_rates.append(rate)
        rate, ours = one_pass(ours_func, images)
        ours_rates.append(rate)
    return statistics.median(naive_rates), statistics.median(ours_rates), naive, ours


def run(faces: Path, repeat: int, detect_side: int, quick: bool) -> dict:
    photos = [load_image(faces / name) for name in (SINGLE_FACE[:3] if quick else SINGLE_FACE)]
    scorer = IdentityScorer.from_paths([faces / REFERENCE], detect_side=detect_side)
    reference = scorer.references.references[0].encoding
    naive_distance(photos[0], reference)  # warm up caches and lazy model state
    rows = []
    for label, size in SIZES.items():
        images = [ImageOps.pad(photo, size, Image.Resampling.LANCZOS, color=BACKGROUND) for photo in photos]
        naive_rate, ours_rate, naive, ours = compare(
            lambda im: naive_distance(im, reference), lambda im: scorer.score(im).distance, images, repeat
        )
        moved = [abs(a - b) for a, b in zip(naive, ours, strict=True) if a is not None and b is not None]
        rows.append(
            {
                "size": label,
                "images": len(images),
                "naive_images_per_s": round(naive_rate, 2),
                "ours_images_per_s": round(ours_rate, 2),
                "speedup": round(ours_rate / naive_rate, 2),
                "faces_found_naive": sum(d is not None for d in naive),
                "faces_found_ours": sum(d is not None for d in ours),
                "max_distance_change": round(max(moved), 4) if moved else None,
            }
        )
    return {"detect_side": detect_side, "repeat": repeat, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=Path, default=default_faces(), help="The shared face photos folder.")
    parser.add_argument(
        "--repeat", type=int, default=3, help="Timed passes per size (the median is reported)."
    )
    parser.add_argument("--detect-side", type=int, default=512, help="Our detection copy's longest side.")
    parser.add_argument(
        "--quick", action="store_true", help="3 photos and 1 pass: a smoke run, not a measurement."
    )
    parser.add_argument("--all-cores", action="store_true", help="Do not pin to one core.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    if not args.faces.is_dir():
        parser.error(f"{args.faces} not found; pass --faces or set FLENWHEEL_SHARED")
    pinning = "all cores" if args.all_cores else pin_one_core()
    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    result = run(args.faces, 1 if args.quick else args.repeat, args.detect_side, args.quick)
    result["cpu"] = pinning
    result["load_average"] = [load_before, round(os.getloadavg()[0], 2) if load_before is not None else None]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"identity throughput, HOG detector, {pinning}, detect side {args.detect_side}, "
        f"median of {result['repeat']} alternating passes, 1-min load average "
        f"{result['load_average'][0]} -> {result['load_average'][1]} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'size':10s} {'images':>6s} {'naive img/s':>12s} {'ours img/s':>11s} {'ratio':>6s} "
        f"{'faces naive/ours':>17s} {'max |d change|':>15s}"
    )
    for row in result["rows"]:
        faces = f"{row['faces_found_naive']}/{row['faces_found_ours']}"
        print(
            f"{row['size']:10s} {row['images']:6d} {row['naive_images_per_s']:12.2f} "
            f"{row['ours_images_per_s']:11.2f} "
            f"{row['speedup']:5.2f}x {faces:>17s} {row['max_distance_change']!s:>15s}"
        )


if __name__ == "__main__":
    main()
