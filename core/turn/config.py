"""The settings of one headless flywheel turn (``flenwheel run PROJECT --config turn.yaml``).

One YAML file holds what a person would otherwise set on twelve workflow graphs: which models and
memory options, how many edits and images, how reviews are made, what the trainer overrides and
how the model card runs. Unknown keys are errors, so a typo never silently falls back to a
default; every section and key is optional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..data.errors import FlenwheelError
from ..editor.editor_skip import DEFAULT_MIN_TRIPLETS
from ..identity.references import DEFAULT_TOLERANCE
from ..models.pipelines import DTYPES, OFFLOADS, QUANTIZATIONS, TRANSFORMER_QUANTIZATIONS, LoadOptions
from ..models.registry import CHARACTER, EDITOR, Role, UnknownFamilyError, default_family, family, family_names

_LOAD = LoadOptions()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelsSection(_Section):
    """Base models and the memory options shared by every in-process stage.

    ``character_base`` and ``editor`` name registered model families; ``flux`` and ``qwen_edit`` are
    where their weights come from (default: each family's hub id).
    """

    character_base: str = default_family(CHARACTER).name
    editor: str = default_family(EDITOR).name
    flux: str | None = None
    flux_transformer_file: str | None = None
    flux_vae_file: str | None = None
    clip_l_file: str | None = None
    t5_file: str | None = None
    qwen_edit: str | None = None
    qwen_transformer_file: str | None = None
    edit_loras: list[str] = Field(default_factory=list, description="PATH[:STRENGTH] or ours:vN")
    dtype: Literal[DTYPES] = _LOAD.dtype  # type: ignore[valid-type]
    device: str | None = _LOAD.device
    quantize: Literal[TRANSFORMER_QUANTIZATIONS] = _LOAD.quantize  # type: ignore[valid-type]
    quantize_text_encoder: Literal[QUANTIZATIONS] = _LOAD.quantize_text_encoder  # type: ignore[valid-type]
    offload: Literal[OFFLOADS] = _LOAD.offload  # type: ignore[valid-type]
    vae_tiling: bool = _LOAD.vae_tiling

    @field_validator("character_base")
    @classmethod
    def _character_family(cls, value: str) -> str:
        return _of_role(value, CHARACTER)

    @field_validator("editor")
    @classmethod
    def _editor_family(cls, value: str) -> str:
        return _of_role(value, EDITOR)

    @model_validator(mode="after")
    def _default_sources(self) -> ModelsSection:
        self.flux = self.flux or family(self.character_base).hub_id
        self.qwen_edit = self.qwen_edit or family(self.editor).hub_id
        return self

    def load_options(self) -> LoadOptions:
        return LoadOptions(**{name: getattr(self, name) for name in LoadOptions.__dataclass_fields__})


def _of_role(name: str, role: Role) -> str:
    """The canonical name of a registered family of ``role``; anything else is a validation error."""
    try:
        entry = family(name)
    except UnknownFamilyError as exc:
        raise ValueError(str(exc)) from None
    if entry.role != role:
        raise ValueError(f"'{name}' ({entry.title}) is not a {role} model; use one of {', '.join(family_names(role))}")
    return entry.name


class SourceEntry(_Section):
    path: str
    angle: str = "unknown"
    expression: str = "unknown"
    caption: str | None = None
    mirror: bool = False


class SourcesSection(_Section):
    """Photos to curate when the project has no sources yet (step 1.1)."""

    add: list[SourceEntry] = Field(default_factory=list)
    require_check: bool = True


class EnrichSection(_Section):
    """``aim``: more view-changing edits toward the views the sources lack."""

    aim: bool = True
    per_source: int = 4
    families: list[str] = Field(default_factory=list)
    seed: int = 0
    steps: int = 40
    true_cfg: float = 4.0
    width: int | None = None
    height: int | None = None
    pixels: int = 1024 * 1024
    vae_pixels: int | None = None
    condition_pixels: int | None = None
    gate: Literal["auto", "on", "off"] = "auto"
    tolerance: float = DEFAULT_TOLERANCE
    retries: int = 2


class ReviewSection(_Section):
    """``wait``: for a person in the review page (served while waiting); ``file``: from ``decisions``."""

    mode: Literal["wait", "file"] = "wait"
    decisions: str | None = None
    timeout_minutes: float = 0
    host: str = "127.0.0.1"
    port: int = 8189


class TrainSection(_Section):
    """Trainer config keys (see docs/training.md) written over ``train init``'s defaults."""

    overrides: dict[str, Any] = Field(default_factory=dict)


class GenerateSection(_Section):
    """``aim``: share the images out by the last card's misses and the training set's gaps (same total)."""

    aim: bool = True
    prompt_files: list[str] = Field(default_factory=list)
    families: list[str] = Field(default_factory=list)
    variants: int | None = None
    seed: int = 0
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None


class FilterSection(_Section):
    """``send_to_review: all`` shows every synthetic image to the reviewer, scores included: for
    stylised characters, where face detection misses too often to remove images automatically."""

    tolerance: float = DEFAULT_TOLERANCE
    send_to_review: Literal["passed", "all"] = "passed"


class BenchmarkSection(_Section):
    enabled: bool = True
    card_files: list[str] = Field(default_factory=list)
    tries: int | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    checks: list[str] | None = None


class IterateSection(_Section):
    """Step 1.8, going on to char_vN+1: the next turn trains it on good + pristine images. With
    ``enabled`` or ``train_next`` false the loop stops after the current turn (one turn only)."""

    enabled: bool = True
    train_next: bool = True


class EditorSection(_Section):
    """The editor flywheel after each model card: corrections -> re-runs -> triplets -> editor LoRA ->
    editor comparison on held-back sources -> the next turn enriches with the winner."""

    enabled: bool = True
    min_triplets: int = Field(DEFAULT_MIN_TRIPLETS, ge=1,
                              description="train the editor LoRA only with at least this many")
    rerun_seeds: int = Field(1, ge=0, le=8, description="improved-prompt re-runs per correction without a target")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Qwen-Edit trainer config keys")
    compare_sources: int = Field(4, ge=1, description="held-back sources the editors are compared on")
    compare_per_source: int = Field(1, ge=1, le=16, description="edits per held-back source and editor")


class StopSection(_Section):
    """When the loop of turns stops (the first rule that holds wins)."""

    target: float | None = Field(None, gt=0, le=1, description="verified first-try success; None: the card's")
    max_turns: int = Field(5, ge=1)
    patience: int = Field(2, ge=1, description="turns without a gain in first-try success before stopping")


class TurnConfig(_Section):
    models: ModelsSection = Field(default_factory=ModelsSection)
    sources: SourcesSection = Field(default_factory=SourcesSection)
    enrich: EnrichSection = Field(default_factory=EnrichSection)
    review: ReviewSection = Field(default_factory=ReviewSection)
    train: TrainSection = Field(default_factory=TrainSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    filter: FilterSection = Field(default_factory=FilterSection)
    benchmark: BenchmarkSection = Field(default_factory=BenchmarkSection)
    iterate: IterateSection = Field(default_factory=IterateSection)
    editor: EditorSection = Field(default_factory=EditorSection)
    stop: StopSection = Field(default_factory=StopSection)


def load_turn_config(path: str | Path | None) -> TurnConfig:
    """Read and validate a turn file (None: all defaults), naming the file and key on errors."""
    if path is None:
        return TurnConfig()
    file = Path(path).expanduser()
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise FlenwheelError(f"turn config {file} does not exist") from None
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: bytes that are not UTF-8
        raise FlenwheelError(f"turn config {file} cannot be read: {exc}") from None
    except RecursionError:
        raise FlenwheelError(f"turn config {file} nests too deeply to be a turn config") from None
    if not isinstance(raw, dict):
        raise FlenwheelError(f"turn config {file} must be a mapping of sections (models, enrich, ...)")
    try:
        config = TurnConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise FlenwheelError(f"turn config {file}: {problems}") from None
    for entry in config.sources.add:
        if not Path(entry.path).is_absolute():
            entry.path = str((file.parent / entry.path).resolve())
    if config.review.decisions and not Path(config.review.decisions).is_absolute():
        config.review.decisions = str((file.parent / config.review.decisions).resolve())
    config.benchmark.card_files = [str((file.parent / f).resolve()) if not Path(f).expanduser().is_absolute()
                                   else f for f in config.benchmark.card_files]
    check_before_run(config)
    return config


def _looks_local(text: str) -> bool:
    return text.startswith(("/", ".", "~")) or "\\" in text or Path(text).suffix in (".safetensors", ".gguf")


def check_before_run(config: TurnConfig) -> None:
    """Refuse a config that would fail later (a missing model, card or decisions file, a count that
    can never work), naming the setting, so nothing runs and nothing is written."""
    problems = []
    models = config.models
    for key, value in models:
        if isinstance(value, str) and value and _looks_local(value) and not Path(value).expanduser().exists():
            problems.append(f"models.{key}: {value} does not exist")
    for index, name in enumerate(config.benchmark.card_files):
        if not Path(name).expanduser().is_file():
            problems.append(f"benchmark.card_files[{index}]: {name} does not exist")
    if config.review.decisions and not Path(config.review.decisions).expanduser().is_file():
        problems.append(f"review.decisions: {config.review.decisions} does not exist")
    problems += bound_problems(config) + override_problems(config) + model_source_problems(config)
    if problems:
        raise FlenwheelError("turn config: " + "; ".join(problems))


#: Every number (and the port) a turn file may set, with the range it must lie in: the node widgets' ranges,
#: so a value that would fail hours later (after enrichment and a human review) is refused before any stage.
#: The vision encoder's condition image may be as small as one 28x28 merged patch (the tiny models use 56x56).
SIZE, SEED, STEPS = (64, 4096), (0, 2**32 - 1), (1, 200)
BOUNDS: dict[str, tuple[float, float]] = {
    "enrich.per_source": (1, 20), "enrich.seed": SEED, "enrich.steps": STEPS, "enrich.true_cfg": (0, 20),
    "enrich.width": SIZE, "enrich.height": SIZE, "enrich.pixels": (64 * 64, 4096 * 4096),
    "enrich.vae_pixels": (64 * 64, 4096 * 4096), "enrich.condition_pixels": (28 * 28, 4096 * 4096),
    "enrich.tolerance": (0.2, 1.0), "enrich.retries": (0, 10),
    "review.timeout_minutes": (0, 7 * 24 * 60), "review.port": (1, 65535),
    "generate.variants": (1, 64), "generate.seed": SEED, "generate.width": SIZE, "generate.height": SIZE,
    "generate.steps": STEPS, "generate.guidance": (0, 30),
    "filter.tolerance": (0.05, 1.5),
    "benchmark.tries": (1, 32), "benchmark.width": SIZE, "benchmark.height": SIZE, "benchmark.steps": STEPS,
    "editor.min_triplets": (1, 100_000), "editor.rerun_seeds": (0, 8), "editor.compare_sources": (1, 1000),
    "editor.compare_per_source": (1, 16), "stop.target": (0, 1), "stop.max_turns": (1, 1000),
    "stop.patience": (1, 1000),
}
#: Sizes a diffusion model takes only in steps of 16 (the VAE's 8 times the 2x2 patches).
MULTIPLE_OF_16 = {key for key, bounds in BOUNDS.items() if bounds is SIZE}


def bound_problems(config: TurnConfig) -> list[str]:
    """Each number of ``BOUNDS`` that is set and outside its range (or off the 16-pixel grid), as one phrase."""
    problems = []
    for key, (low, high) in BOUNDS.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value is None:
            continue
        if not low <= value <= high:
            problems.append(f"{key}: {value} is outside {low:g}-{high:g}")
        elif key in MULTIPLE_OF_16 and value % 16:
            problems.append(f"{key}: {value} is not a multiple of 16 (try {max(low, round(value / 16) * 16)})")
    return problems


def override_problems(config: TurnConfig) -> list[str]:
    """``train.overrides`` / ``editor.overrides`` checked by the trainer's own schema (keys, types, ranges) now,
    not when the training stage starts hours later. The placeholders stand for what the turn fills in itself."""
    from ...trainers.config import ConfigError, parse_config

    problems = []
    for key, kind, overrides in (("train.overrides", config.models.character_base, config.train.overrides),
                                 ("editor.overrides", config.models.editor, config.editor.overrides)):
        if not overrides:
            continue
        placeholders = {"trainer": kind, "model": "placeholder/model", "dataset_path": ["."], "output_path": "."}
        try:
            parse_config({**placeholders, **overrides}, key)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def model_source_problems(config: TurnConfig) -> list[str]:
    """``models.flux`` / ``models.qwen_edit`` that read as a relative folder which is not there, or as no hub id."""
    from ..models.pipelines import hub_id_or_refusal, looks_like_path

    problems = []
    models = config.models
    for kind, value in ((models.character_base, models.flux), (models.editor, models.qwen_edit)):
        if value and not looks_like_path(value):
            try:
                hub_id_or_refusal(value, kind)
            except FlenwheelError as exc:
                problems.append(f"models: {exc}")
    return problems


def default_config_text() -> str:
    """Every key with its default, as YAML (``flenwheel run --print-config``)."""
    return yaml.safe_dump(TurnConfig().model_dump(mode="json"), sort_keys=False, allow_unicode=True)
