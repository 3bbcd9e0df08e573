"""Draw docs/images/model_card_example.jpg: the model card filled with real photos (README picture).

The shared face photos of Barack Obama stand in for a trained LoRA's images: frontal photos for the
front cells, a turned photo for half-left and its mirror image for half-right. Profiles have no
real photo, so those cells get the turned one and honestly fail the head-angle check.
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

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "model_card_example.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--width", type=int, default=1100, help="Width of the saved picture.")
    args = parser.parse_args()
    obama = args.faces / "obama"
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.init(Path(tmp) / "obama", name="Barack Obama")
        add_sources(project, [obama / "obama3.jpg", obama / "obama4.jpg"])
        front, turned = load_image(obama / "obama.jpg"), load_image(obama / "obama2.jpg")
        views = {"half-left": turned, "half-right": ImageOps.mirror(turned), "profile-left": turned,
                 "profile-right": ImageOps.mirror(turned)}
        run_benchmark(project, PhotoRenderer("char_v1", lambda cell: views.get(cell.angle, front), side=512),
                      load_card(tries=1, limits={"min_side": 512}))
        card = Image.open(write_outputs(project, "v1").card_path).convert("RGB")
    card = card.resize((args.width, round(card.height * args.width / card.width)), Image.Resampling.LANCZOS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    card.save(OUT, quality=82, optimize=True)
    print(OUT)


if __name__ == "__main__":
    main()
