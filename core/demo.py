"""``flenwheel demo``: an offline run of the flywheel on bundled photos and tiny random models.

It shows a newcomer the whole data path with no GPU and no download: a project is created from the
bundled sample photos (licence in ``samples/character/LICENSE.md``), curated and checked, and the
tiny pipelines are built and run. Tiny random-weight models produce noise, so any identity figure
is zero by construction; the demo proves plumbing, not quality.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .curation import add_sources, check_sources
from .errors import FlenwheelError
from .project import Project
from .records import STAGES

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "character"


@dataclass
class DemoResult:
    project: Path
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


def sample_specs() -> list[dict[str, str]]:
    """The bundled photos with their view and expression tags."""
    manifest = SAMPLES_DIR / "samples.json"
    if not manifest.is_file():
        raise FlenwheelError(f"bundled samples are missing ({manifest}); reinstall FLENwheel")
    return json.loads(manifest.read_text(encoding="utf-8"))["images"]


def curate_samples(project: Project, log: Callable[[str], None]) -> None:
    for spec in sample_specs():
        report = add_sources(project, [SAMPLES_DIR / spec["file"]], angle=spec["angle"],
                             expression=spec["expression"], mirror=True)
        for record in report.added:
            reasons = (record.quality or {}).get("reasons") or []
            log(f"  added {record.filename} ({record.angle}, {record.expression})"
                + (f" - flagged: {'; '.join(reasons)}" if reasons else ""))


def smoke_tiny_models(project: Project, models_dir: Path, log: Callable[[str], None]) -> dict[str, str]:
    """Build the tiny pipelines and run each once, through the loader real weights use."""
    import torch

    from . import tiny
    from .images import load_image, save_png
    from .pipelines import load_pipeline, qwen_edit_sizes

    out = project.root / "demo_outputs"
    built = {kind: tiny.ensure(kind, models_dir) for kind in tiny.KINDS}
    flux = load_pipeline("flux", str(built["flux"]), dtype="fp32", device="cpu")
    image = flux.pipe(f"portrait of {project.subject}", height=64, width=64, num_inference_steps=2,
                      generator=torch.Generator().manual_seed(0)).images[0]
    files = {"flux_sample": str(save_png(image, out / "tiny_flux_sample.png"))}
    edit = load_pipeline("qwen-edit", str(built["qwen-edit"]), dtype="fp32", device="cpu")
    source = project.dataset("source").records[0]
    with qwen_edit_sizes(vae_pixels=64 * 64, condition_pixels=56 * 56):
        edited = edit.pipe(image=[load_image(project.dataset("source").image_path(source))],
                           prompt="change the background to a forest, keep the person identical",
                           height=64, width=64, num_inference_steps=2,
                           generator=torch.Generator().manual_seed(0)).images[0]
    files["qwen_edit_sample"] = str(save_png(edited, out / "tiny_qwen_edit_sample.png"))
    for name, path in files.items():
        log(f"  {name}: {path}")
    return files


def run_demo(out: str | Path, log: Callable[[str], None] = print) -> DemoResult:
    """Create ``OUT/project`` and run every stage that exists on it."""
    start = time.monotonic()
    root = Path(out).expanduser().resolve() / "project"
    if (root / "flenwheel.json").exists():
        raise FlenwheelError(f"{root} already holds a demo project; choose another OUT folder or delete it")
    project = Project.init(root, name="Demo character")
    result = DemoResult(project=root)
    log(f"1. project created at {root}")
    log("2. curating the bundled sample photos (with mirrored copies)")
    curate_samples(project, log)
    report = check_sources(project)
    for criterion in report.criteria:
        line = f"{'PASS' if criterion.passed else 'FAIL'} {criterion.name}: {criterion.detail}"
        result.summary.append(line)
        log(f"  {line}")
    log("3. building and running the tiny random-weight pipelines (outputs are noise)")
    result.outputs = smoke_tiny_models(project, Path(out).expanduser().resolve() / "tiny-models", log)
    problems = [r for s in STAGES for v in project.versions(s) if not (r := project.dataset(s, v).verify()).ok]
    result.summary.append("manifests verified" if not problems else f"{len(problems)} dataset(s) fail verify")
    result.seconds = time.monotonic() - start
    log(f"done in {result.seconds:.1f} s; project: {root}")
    return result
