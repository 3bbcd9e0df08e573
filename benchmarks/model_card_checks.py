"""The model card's estimators on the shared real photos: head-view accuracy and the cost of the checks.

1. Head view (``core/vision/head_pose.py``): every shared photo and its mirror image, with the view a
   person reads in it (labelled by eye, see VIEWS_BY_EYE). Prints yaw, the bucket and whether it
   agrees, the accuracy per group, and whether mirroring swapped left and right. Photos turned only
   slightly (about 15-25 degrees by eye) sit on the front/half boundary: for them only the side of
   the turn is scored. No shared photo shows a 45-degree or a profile view, so those buckets are
   reported as untested.
2. Cost per 1024x1024 image of ``CardScorer.score`` (identity, one face, sharpness, head angle) on
   one CPU core, against two of the photos as references.
3. With FLENWHEEL_POSE_PYTHON set: the MediaPipe worker's start-up and per-image time.

    FLENWHEEL_SHARED=/path/to/shared python benchmarks/model_card_checks.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import ImageOps

from flenwheel.core.benchmark.checks import CardScorer
from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.images import load_image
from flenwheel.core.data.project import Project
from flenwheel.core.data.taxonomy import MIRRORED_ANGLE
from flenwheel.core.identity.faces import find_faces
from flenwheel.core.vision.body_pose import open_pose_model
from flenwheel.core.vision.head_pose import head_view

#: What a person sees in each shared photo (largest face): front, a clear turn, or a slight turn.
VIEWS_BY_EYE = {
    "obama/obama.jpg": "front", "obama/obama_small.jpg": "front", "obama/obama_partial_face.jpg": "front",
    "alex_lacamoire/alex2.jpg": "front", "biden/biden2.jpg": "front",
    "obama/obama2.jpg": "half-left", "obama/obama2_rgba.png": "half-left", "alex_lacamoire/alex1.png": "half-right",
    "obama/obama3.jpg": "slightly right", "obama/obama4.jpg": "slightly right", "biden/biden.jpg": "slightly right",
    "lin_manuel_miranda/lin1.png": "slightly right", "group/obama_biden.jpg": "slightly right",
}


def _agrees(expected: str, view: str, yaw: float) -> bool:
    if expected.startswith("slightly"):
        return (yaw < 0) == expected.endswith("right")
    return view == expected


def _mirror_label(expected: str) -> str:
    if expected.startswith("slightly"):
        return "slightly left" if expected.endswith("right") else "slightly right"
    return MIRRORED_ANGLE.get(expected, expected)


def head_views(faces: Path) -> dict[str, Any]:
    rows, groups = [], {}
    for name, expected in VIEWS_BY_EYE.items():
        image = load_image(faces / name)
        for variant, picture, label in (("photo", image, expected),
                                        ("mirrored", ImageOps.mirror(image), _mirror_label(expected))):
            found = find_faces(picture, model="hog")  # dlib's 68 points; model_card_ceiling.py measures the mesh
            yaw, view = head_view(found[0].landmarks) if found else (None, "no face")
            ok = yaw is not None and _agrees(label, view, yaw)
            rows.append({"photo": name, "variant": variant, "by_eye": label, "yaw": yaw, "view": view, "agrees": ok})
            group = "slight turn (side only)" if label.startswith("slightly") else label
            groups.setdefault(group, []).append(ok)
    swapped = [a["yaw"] * b["yaw"] < 0 for a, b in zip(rows[::2], rows[1::2], strict=True)
               if a["yaw"] and b["yaw"] and abs(a["yaw"]) > 5]
    return {
        "rows": rows,
        "accuracy": {g: f"{sum(v)}/{len(v)}" for g, v in groups.items()},
        "mirroring_swaps_side": f"{sum(swapped)}/{len(swapped)} (photos with |yaw| > 5)",
        "untested": ["profile-left", "profile-right", "the half/profile boundary (50 degrees)"],
    }


def check_cost(faces: Path, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        project = Project.init(Path(folder) / "p", name="Obama")
        add_sources(project, [faces / "obama" / "obama3.jpg", faces / "obama" / "obama4.jpg"])
        card = load_card()
        start = time.perf_counter()
        scorer = CardScorer.from_project(project, card)
        setup = time.perf_counter() - start
        cell = next(c for c in card.cells(project.subject, project.token) if c.id == "front-neutral")
        image = ImageOps.pad(load_image(faces / "obama" / "obama.jpg"), (1024, 1024))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            scorer.score(image, cell)
            times.append(time.perf_counter() - start)
    return {"references_and_calibration_s": round(setup, 2), "score_1024_median_s": round(statistics.median(times), 3),
            "repeats": repeats}


def pose_cost(faces: Path) -> dict[str, Any] | None:
    if not os.environ.get("FLENWHEEL_POSE_PYTHON"):
        return None
    start = time.perf_counter()
    with open_pose_model() as model:
        started = time.perf_counter() - start
        times = []
        for name in ("obama/obama3.jpg", "biden/biden.jpg", "obama/obama.jpg"):
            t0 = time.perf_counter()
            model.landmarks(faces / name)
            times.append(time.perf_counter() - t0)
        median = round(statistics.median(times), 3)
        return {"model": model.name, "start_s": round(started, 2), "per_image_median_s": median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("FLENWHEEL_SHARED", "../shared")) / "faces")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    report = {"head_view": head_views(args.faces), "check_cost_one_core": check_cost(args.faces, args.repeats),
              "pose": pose_cost(args.faces)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'photo':34s} {'variant':9s} {'by eye':15s} {'yaw':>6s}  {'estimated':13s} agrees")
    for row in report["head_view"]["rows"]:
        yaw = "-" if row["yaw"] is None else f"{row['yaw']:+.1f}"
        print(f"{row['photo']:34s} {row['variant']:9s} {row['by_eye']:15s} {yaw:>6s}  {row['view']:13s} "
              f"{'yes' if row['agrees'] else 'NO'}")
    print("accuracy:", ", ".join(f"{k} {v}" for k, v in report["head_view"]["accuracy"].items()))
    print("mirroring swaps the side:", report["head_view"]["mirroring_swaps_side"])
    print("untested:", ", ".join(report["head_view"]["untested"]))
    cost = report["check_cost_one_core"]
    print(f"checks per 1024x1024 image (one core): {cost['score_1024_median_s']} s median of {cost['repeats']}; "
          f"references + sharpness calibration: {cost['references_and_calibration_s']} s")
    pose = report["pose"]
    print("body pose:", "FLENWHEEL_POSE_PYTHON not set" if pose is None else
          f"{pose['model']}: start {pose['start_s']} s, {pose['per_image_median_s']} s per image")


if __name__ == "__main__":
    main()
