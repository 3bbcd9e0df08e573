"""``flenwheel demo``: two whole turns of both flywheels, offline, on tiny random models.

It shows a newcomer the whole data path with no GPU and no download: a project is created from a
photo that an installed package ships, or from the user's own photos (``--photos DIR``; see
``demo_photos``), then the loop of
``flenwheel run`` drives two turns of curation, enrichment, review, training, generation,
filtering, review and the model card, each followed by the editor flywheel (re-runs, triplets, the
editor LoRA, the editor comparison), on tiny random-weight models, with auto-review (demo only,
not a human) standing in for the person. ``editor.min_triplets`` is lowered to 3 because the
auto-review of a demo-sized enrichment sends back only a handful of edits for correction.

Tiny random-weight models produce noise, so there are no faces in any generated image and every
identity figure is zero by construction; the demo proves plumbing, resumption and reports, not
quality. The turn config it used is written next to the project, ready to be edited into a real one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.errors import FlenwheelError
from ..data.project import Project
from ..models.registry import CHARACTER, EDITOR, default_family
from .config import ModelsSection, TurnConfig
from .demo_photos import DemoCharacter, own_character, packaged_character

NOISE_NOTE = ("tiny random-weight models produce noise: no generated image shows a face, so the identity "
              "figures are zero and every model-card cell fails. That is the expected, honest result.")

#: Trainer settings that make the tiny FLUX train in seconds on a CPU.
TINY_TRAINING = {
    "max_train_steps": 30, "save_every": 15, "resolution": 64, "bucket_step": 16, "lora_rank": 4,
    "learning_rate": 2e-3, "mixed_precision": "no", "gradient_checkpointing": False,
    "max_sequence_length": 32, "sample_every": 30, "sample_steps": 2, "sample_size": 64,
    "caption_dropout": 0.0, "save_dtype": "fp32",
}
#: The same for the tiny Qwen-Edit (the editor LoRA).
TINY_EDITOR_TRAINING = {**TINY_TRAINING, "max_train_steps": 10, "save_every": 10, "learning_rate": 1e-3,
                        "condition_pixels": 56 * 56}
DEMO_TURNS = 2
DEMO_MIN_TRIPLETS = 3


@dataclass
class DemoResult:
    project: Path
    config: Path
    seconds: float = 0.0
    reports: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


def demo_config(models: dict[str, Path], character: DemoCharacter) -> TurnConfig:
    """Turns on tiny models: 64 px everywhere, 2 edits per source, one try per model-card cell, two turns.

    Step 1.1's criteria are printed but do not stop the demo (``require_check: false``): the packaged
    character is one photo, so one view, and a user's first folder is rarely tagged."""
    return TurnConfig.model_validate({
        "models": ModelsSection(flux=str(models[default_family(CHARACTER).name]),
                                qwen_edit=str(models[default_family(EDITOR).name]), dtype="fp32", device="cpu"),
        "sources": {"add": character.sources, "require_check": False},
        "enrich": {"per_source": 2, "steps": 2, "true_cfg": 1.0, "width": 64, "height": 64,
                   "vae_pixels": 64 * 64, "condition_pixels": 56 * 56, "retries": 0},
        "train": {"overrides": TINY_TRAINING},
        "generate": {"variants": 1, "width": 64, "height": 64, "steps": 2},
        "filter": {"send_to_review": "all"},
        "benchmark": {"tries": 1, "width": 64, "height": 64, "steps": 2},
        "editor": {"min_triplets": DEMO_MIN_TRIPLETS, "overrides": TINY_EDITOR_TRAINING, "compare_sources": 3},
        "stop": {"max_turns": DEMO_TURNS},
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


def stage_times(project: Project) -> list[str]:
    """Wall time per stage and turn, from the flywheel report."""
    from .state import STAGES, FlywheelState

    turns = FlywheelState.load(project).turns
    lines = ["time per stage (s): " + " | ".join(f"turn {t['turn']}" for t in turns)]
    for stage in STAGES:
        times = [t["seconds"].get(stage) for t in turns]
        if any(v is not None for v in times):
            lines.append(f"  {stage:<18} " + " | ".join("-" if v is None else f"{v:6.1f}" for v in times))
    return lines


def run_demo(out: str | Path, log: Callable[[str], None] = print, photos: str | Path | None = None) -> DemoResult:
    """Create ``OUT/project`` and run two whole turns of both flywheels on it (tiny models, auto-review),
    from the photo an installed package ships or from the user's own ``photos`` folder."""
    import torch

    from ..testing import tiny
    from .loop import run_flywheel

    start = time.monotonic()
    base = Path(out).expanduser().resolve()
    root = base / "project"
    if (root / "flenwheel.json").exists():
        raise FlenwheelError(f"{root} already holds a demo project; choose another OUT folder or delete it")
    character = own_character(Path(photos)) if photos is not None else packaged_character(base / "photos")
    log(f"character: {character.name}; licence: {character.licence}")
    for note in character.notes:
        log(note)
    log(f"building the tiny random-weight models in {base / 'tiny-models'}")
    models = {entry.name: tiny.ensure(entry.name, base / "tiny-models")
              for entry in (default_family(CHARACTER), default_family(EDITOR))}
    config = demo_config(models, character)
    config_path = base / "turn.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    project = Project.init(root, name="Demo character")
    log(f"project: {root}\nturn config: {config_path}\nNOTE: {NOISE_NOTE}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is several times faster on a busy small CPU
    try:
        with _quiet_model_libraries():
            run = run_flywheel(project, config, auto=True, log=log)
    finally:
        torch.set_num_threads(threads)
    reports = {**{k: v for turn in run.turns for k, v in turn.reports.items()},
               **{f"flywheel {kind}": path for kind, path in run.files.items()}}
    result = DemoResult(project=root, config=config_path, reports=reports)
    result.seconds = time.monotonic() - start
    result.summary = [f"{len(run.turns)} whole turns of both flywheels in {result.seconds:.0f} s "
                      f"(auto-review: demo only, not a human); stopped: {run.stop_reason}",
                      *stage_times(project), *(f"{k}: {v}" for k, v in reports.items()), NOISE_NOTE]
    for line in result.summary:
        log(line)
    return result
