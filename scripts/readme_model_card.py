"""Draw docs/images/model_card_example.jpg: the model card filled with the demo character's photos.

    python scripts/readme_model_card.py

The demo character (the Grace Hopper portrait matplotlib ships, varied as `flenwheel demo` varies it;
core/turn/demo_photos.py) stands in for a trained LoRA's images: her front photo for every front
cell, the tilted and mirrored copies for the turned cells. A front photo is not a turned head, so
the half and profile cells honestly fail or stay unverified: the picture shows what the card checks,
not a result. No photo from another repository is drawn.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from flenwheel.core.benchmark.model_card import load_card
from flenwheel.core.benchmark.photo_renderer import PhotoRenderer
from flenwheel.core.benchmark.results import write_outputs
from flenwheel.core.benchmark.run import run_benchmark
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.images import load_image
from flenwheel.core.data.project import Project
from flenwheel.core.turn.demo_photos import packaged_character

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "model_card_example.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=1100, help="Width of the saved picture.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        character = packaged_character(photos)
        project = Project.init(Path(tmp) / "hopper", name="Grace Hopper")
        add_sources(project, [photos / "hopper_portrait.png", photos / "hopper_closeup.png"])
        front, tilted = load_image(photos / "hopper_warm.png"), load_image(photos / "hopper_tilted.png")
        views = {"half-left": tilted, "half-right": ImageOps.mirror(tilted), "profile-left": tilted,
                 "profile-right": ImageOps.mirror(tilted)}
        run_benchmark(project, PhotoRenderer("char_v1", lambda cell: views.get(cell.angle, front), side=512),
                      load_card(tries=1, limits={"min_side": 512}))
        card = Image.open(write_outputs(project, "v1").card_path).convert("RGB")
        print(f"drawn from: {character.licence}")
    card = card.resize((args.width, round(card.height * args.width / card.width)), Image.Resampling.LANCZOS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    card.save(OUT, quality=82, optimize=True)
    print(OUT)


if __name__ == "__main__":
    main()
