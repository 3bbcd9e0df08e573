"""``flenwheel demo``: one whole flywheel turn, offline, on bundled photos and tiny random models.

It shows a newcomer the whole data path with no GPU and no download: a project is created from the
bundled sample photos (licence in ``samples/character/LICENSE.md``), then ``flenwheel run`` drives
curation, enrichment, review, training, generation, filtering, review, iteration and the model
card on tiny random-weight models, with ``--auto-review`` standing in for the person.

Tiny random-weight models produce noise, so there are no faces in any generated image and every
identity figure is zero by construction; the demo proves plumbing, resumption and reports, not
quality. The turn config it used is written next to the project, ready to be edited into a real one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.errors import FlenwheelError
from ..data.project import Project
from .config import TurnConfig

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples" / "character"
NOISE_NOTE = ("tiny random-weight models produce noise: no generated image shows a face, so the identity "
              "figures are zero and every model-card cell fails. That is the expected, honest result.")

#: Trainer settings that make the tiny FLUX train in seconds on a CPU.
TINY_TRAINING = {
    "max_train_steps": 30, "save_every": 15, "resolution": 64, "bucket_step": 16, "lora_rank": 4,
    "learning_rate": 2e-3, "mixed_precision": "no", "gradient_checkpointing": False,
    "max_sequence_length": 32, "sample_every": 30, "sample_steps": 2, "sample_size": 64,
    "caption_dropout": 0.0, "save_dtype": "fp32",
}


@dataclass
class DemoResult:
    project: Path
    config: Path
    seconds: float = 0.0
    reports: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


def sample_specs() -> list[dict[str, str]]:
    """The bundled photos with their view and expression tags."""
    manifest = SAMPLES_DIR / "samples.json"
    if not manifest.is_file():
        raise FlenwheelError(f"bundled samples are missing ({manifest}); reinstall FLENwheel")
    return json.loads(manifest.read_text(encoding="utf-8"))["images"]


def demo_config(models: dict[str, Path]) -> TurnConfig:
    """A turn on tiny models: 64 px everywhere, 2 edits per source, one try per model-card cell."""
    sources = [{"path": str(SAMPLES_DIR / spec["file"]), "angle": spec["angle"], "expression": spec["expression"],
                "mirror": True} for spec in sample_specs()]
    return TurnConfig.model_validate({
        "models": {"flux": str(models["flux"]), "qwen_edit": str(models["qwen-edit"]), "dtype": "fp32",
                   "device": "cpu"},
        "sources": {"add": sources},
        "enrich": {"per_source": 2, "steps": 2, "true_cfg": 1.0, "width": 64, "height": 64,
                   "vae_pixels": 64 * 64, "condition_pixels": 56 * 56, "retries": 0},
        "train": {"overrides": TINY_TRAINING},
        "generate": {"variants": 1, "width": 64, "height": 64, "steps": 2},
        "filter": {"send_to_review": "all"},
        "benchmark": {"tries": 1, "width": 64, "height": 64, "steps": 2},
    })


@contextlib.contextmanager
def _quiet_model_libraries() -> Iterator[None]:
    """Silence diffusers/transformers warnings that only the tiny byte-level tokenizers trigger
    (every character is a token there, so real prompts overflow CLIP's 77 tokens)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library, level in zip((diffusers_logging, transformers_logging), levels, strict=True):
            library.set_verbosity(level)
            library.enable_progress_bar()


def run_demo(out: str | Path, log: Callable[[str], None] = print) -> DemoResult:
    """Create ``OUT/project`` and run one whole turn on it with tiny models and auto-review."""
    import torch

    from ..testing import tiny
    from .turn import run_turn

    start = time.monotonic()
    base = Path(out).expanduser().resolve()
    root = base / "project"
    if (root / "flenwheel.json").exists():
        raise FlenwheelError(f"{root} already holds a demo project; choose another OUT folder or delete it")
    log(f"building the tiny random-weight models in {base / 'tiny-models'}")
    models = {kind: tiny.ensure(kind, base / "tiny-models") for kind in tiny.KINDS}
    config = demo_config(models)
    config_path = base / "turn.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    project = Project.init(root, name="Demo character")
    log(f"project: {root}\nturn config: {config_path}\nNOTE: {NOISE_NOTE}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is several times faster on a busy small CPU
    try:
        with _quiet_model_libraries():
            report = run_turn(project, config, auto=True, log=log)
    finally:
        torch.set_num_threads(threads)
    result = DemoResult(project=root, config=config_path, reports=report.reports)
    result.seconds = time.monotonic() - start
    result.summary = [f"one whole turn in {result.seconds:.0f} s", *(f"{k}: {v}" for k, v in report.reports.items()),
                      NOISE_NOTE]
    for line in result.summary:
        log(line)
    return result
