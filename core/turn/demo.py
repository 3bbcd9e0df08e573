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
quality. The turn config it used is written next to the project, every key that differs from the
defaults marked "demo only" with the line a real run uses (``demo_yaml``); a real run starts from a
card preset instead (``flenwheel init PROJECT --gpu N``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.atomic import atomic_write_text
from ..data.errors import FlenwheelError
from ..data.project import Project
from ..models.registry import CHARACTER, EDITOR, default_family
from .config import ModelsSection, TurnConfig
from .console import quiet_model_libraries, torch_threads
from .demo_photos import DemoCharacter, own_character, packaged_character
from .presets import annotated_yaml

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
#: tiny models: one torch thread is several times faster on a busy small CPU (core/turn/console.py)
DEMO_THREADS = 1


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


def demo_yaml(config: TurnConfig, project: Path) -> str:
    """The demo's config as YAML, each key that differs from the defaults marked with the line a real run uses."""
    data, defaults = config.model_dump(mode="json"), TurnConfig().model_dump(mode="json")
    notes = {}
    for section, values in data.items():
        for key, value in values.items():
            if value != defaults[section][key]:
                real = yaml.safe_dump({key: defaults[section][key]}, default_flow_style=True, width=200).strip()
                notes[f"{section}.{key}"] = f"demo only; real run: {real.strip('{}')}"
    for key in ("train.overrides", "editor.overrides"):
        notes[key] = "demo only (tiny models); real run: the preset's (flenwheel run --print-config --gpu N)"
    notes["sources.add"] = "demo only (the demo character); real run: add: [] and flenwheel source add PROJECT PHOTOS"
    header = ["The demo's turn config: tiny random-weight models on the CPU, two turns, auto-review.",
              "Keys marked 'demo only' must change for a real run; better, start from the preset for your card:",
              "  flenwheel init PROJECT --gpu 12|16|24|48|80   (or flenwheel run --print-config --gpu N)",
              f"The demo's loop again, as fast: flenwheel run {project} --config THIS_FILE --auto-review "
              f"--threads {DEMO_THREADS} --no-progress", ""]
    return annotated_yaml(data, notes, header)


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
    atomic_write_text(config_path, demo_yaml(config, root))
    project = Project.init(root, name="Demo character")
    log(f"project: {root}\nturn config: {config_path}\nNOTE: {NOISE_NOTE}")
    with torch_threads(DEMO_THREADS), quiet_model_libraries():
        run = run_flywheel(project, config, auto=True, log=log)
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
