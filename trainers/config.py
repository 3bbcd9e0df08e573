"""The trainer's YAML config: the seed's fields plus what a LoRA trainer user expects, validated.

A typo in a config that runs for hours must fail in the first second, with the key, the file and
a suggestion, not be ignored. So unknown keys are errors (with the closest known key offered),
types and ranges are checked, and relative paths are resolved against the config file's folder so
a config keeps working when the project moves.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..core.data.atomic import atomic_write_text
from ..core.data.errors import FlenwheelError
from ..core.models.registry import ModelFamily, UnknownFamilyError, family, family_names

#: Used when no learning_rate is set: Adam's usual LoRA step, or 1.0 for prodigy, which scales it itself.
DEFAULT_LEARNING_RATE = {"adamw": 1e-4, "adamw8bit": 1e-4, "prodigy": 1.0}
CONFIG_FILE = "config.yaml"


class ConfigError(FlenwheelError):
    """The training config cannot be used; the message names the file, the key and the fix."""


class SampleSpec(BaseModel):
    """One preview generated during training; Qwen-Edit samples also name their source image(s)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    control_paths: list[str] = Field(default_factory=list)


class TrainConfig(BaseModel):
    """Everything one training run needs. Defaults follow common FLUX LoRA practice (ai-toolkit, kohya)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    trainer: str | None = None
    model: str
    dataset_path: list[str]
    output_path: str
    output_name: str | None = None
    project_dir: str | None = None
    instance_token: str | None = None
    default_caption: str | None = None

    lora_rank: int = Field(16, ge=1, le=1024)
    lora_alpha: float | None = Field(None, gt=0)
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None

    optimizer: Literal["adamw", "adamw8bit", "prodigy"] = "adamw"
    learning_rate: float = Field(None, gt=0, validate_default=True)
    weight_decay: float = Field(1e-4, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    lr_scheduler: Literal[
        "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"
    ] = "constant"
    lr_warmup_steps: int = Field(0, ge=0)

    batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_checkpointing: bool = True
    mixed_precision: Literal["bf16", "fp16", "no"] = "bf16"
    #: the frozen base under the LoRA: as loaded, NF4 (QLoRA, CUDA) or fp8 storage computing in mixed_precision
    quantize: Literal["none", "nf4", "fp8"] = "none"
    #: transformer blocks whose frozen weights stay in CPU memory, each brought to the GPU to run
    blocks_to_swap: int = Field(0, ge=0)
    max_train_steps: int = Field(2000, ge=1)
    seed: int = 42

    resolution: int = Field(1024, ge=16)
    enable_buckets: bool = True
    bucket_step: int = Field(64, ge=8)
    max_aspect_ratio: float = Field(2.0, ge=1.0)
    caption_dropout: float = Field(0.05, ge=0.0, le=1.0)
    cache_latents: bool = True
    cache_text_embeddings: bool = True
    cache_to_disk: bool = True

    guidance_scale: float = Field(1.0, ge=0)
    timestep_sampling: Literal["shift", "sigmoid", "uniform"] = "shift"
    max_sequence_length: int = Field(512, ge=1)
    condition_pixels: int = Field(384 * 384, ge=64)

    save_every: int = Field(250, ge=1)
    keep_last_n: int = Field(3, ge=0)
    resume: str = "auto"
    save_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"

    sample_prompts: list[SampleSpec] = Field(default_factory=list)
    sample_every: int = Field(250, ge=0)
    sample_steps: int = Field(20, ge=1)
    sample_guidance_scale: float = Field(3.5, ge=0)
    sample_size: int | None = Field(None, ge=16)
    sample_seed: int = 42

    @field_validator("trainer")
    @classmethod
    def _registered(cls, value: str | None) -> str | None:
        """Any registered family name or alias, stored as the family's canonical name."""
        if value is None:
            return None
        try:
            return family(value).name
        except UnknownFamilyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("dataset_path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("dataset_path")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one dataset (a folder, a training_set.json or a triplets.jsonl)")
        return value

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _default_learning_rate(cls, value: Any, info: ValidationInfo) -> Any:
        """Unset means the optimiser's own default: prodigy at Adam's 1e-4 would barely move."""
        return DEFAULT_LEARNING_RATE.get(info.data.get("optimizer", "adamw"), 1e-4) if value is None else value

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted ``no`` as False; that is what the user meant."""
        return "no" if value is False else value

    @field_validator("sample_prompts", mode="before")
    @classmethod
    def _prompt_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        return [{"prompt": item} if isinstance(item, str) else item for item in value or []]

    @field_validator("resume")
    @classmethod
    def _resume_mode(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "use auto (newest complete checkpoint), none (fresh start) or a checkpoint folder"
            )
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.lr_scheduler != "constant" and self.lr_warmup_steps >= self.max_train_steps:
            raise ValueError("lr_warmup_steps must be smaller than max_train_steps")
        if self.blocks_to_swap and self.quantize == "nf4":
            raise ValueError("blocks_to_swap does not combine with quantize: nf4 (4-bit weights cannot be moved "
                             "between devices); use quantize: fp8 with blocks_to_swap, or blocks_to_swap: 0")
        if self.trainer and self.blocks_to_swap > (most := family(self.trainer).max_blocks_to_swap):
            raise ValueError(f"blocks_to_swap: {self.blocks_to_swap} is above {most}, the most "
                             f"{family(self.trainer).title} allows; use 0 to {most}, or quantize: fp8 for less memory")
        return self

    @property
    def alpha(self) -> float:
        """LoRA alpha; defaults to the rank (scale 1), which every loader reads the same way."""
        return float(self.lora_alpha if self.lora_alpha is not None else self.lora_rank)

    @property
    def model_family(self) -> ModelFamily:
        """The registry entry of ``trainer`` (set by ``load_config`` before training starts)."""
        return family(self.trainer or "")

    @property
    def output_dir(self) -> Path:
        return Path(self.output_path)

    def lora_filename(self) -> str:
        name = self.output_name or f"{(self.trainer or 'lora').replace('-', '_')}_lora"
        return name if name.endswith(".safetensors") else f"{name}.safetensors"

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        data["sample_prompts"] = [
            spec["prompt"] if not spec.get("control_paths") else spec
            for spec in data.get("sample_prompts", [])
        ]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


_PATH_KEYS = ("model", "output_path", "project_dir")


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths are relative to the config's folder; a hub id (``org/name``) is left alone."""
    from ..core.models.pipelines import looks_like_path

    def fix(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    out = dict(raw)
    for key in _PATH_KEYS:
        value = out.get(key)
        if (
            isinstance(value, str)
            and value
            and (key != "model" or (looks_like_path(value) and (base / value).exists()))
        ):
            out[key] = fix(value)
    datasets = out.get("dataset_path")
    if isinstance(datasets, str):
        datasets = [datasets]
    if isinstance(datasets, list):
        out["dataset_path"] = [fix(item) if isinstance(item, str) else item for item in datasets]
    for spec in out.get("sample_prompts") or []:
        if isinstance(spec, dict) and isinstance(spec.get("control_paths"), list):
            spec["control_paths"] = [fix(p) if isinstance(p, str) else p for p in spec["control_paths"]]
    return out


def _describe(exc: ValidationError, source: str) -> str:
    known = list(TrainConfig.model_fields)
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"
            lines.append(f"unknown key '{loc}'{hint}")
        elif err["type"] == "missing":
            lines.append(f"missing required key '{loc}'")
        else:
            shown = err.get("input")
            got = f" (got {shown!r})" if shown is not None and not isinstance(shown, dict) else ""
            lines.append(f"{loc or 'config'}: {err['msg']}{got}")
    return f"{source}: " + "; ".join(lines)


def parse_config(raw: Any, source: str = "config", base: Path | None = None) -> TrainConfig:
    """Validate a mapping (from YAML or a node) into a ``TrainConfig``, with readable errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping of key: value lines")
    data = _resolve_paths(raw, base) if base is not None else raw
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: str | Path, kind: str | None = None) -> TrainConfig:
    """Read and validate a YAML config; ``kind`` (from the command line) must agree with ``trainer:``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"config file {file} does not exist; write one with: flenwheel train init BASE PROJECT "
            f"(BASE: {', '.join(family_names())})"
        )
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from None
    except ValueError as exc:  # bytes that are not UTF-8
        raise ConfigError(f"{file} is not UTF-8 text: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{file} nests too deeply to be a training config") from None
    config = parse_config(raw, str(file), file.resolve().parent)
    if kind is not None:
        try:
            kind = family(kind).name
        except UnknownFamilyError:
            raise ConfigError(f"unknown trainer '{kind}'; use one of {', '.join(family_names())}") from None
        if config.trainer is not None and config.trainer != kind:
            raise ConfigError(
                f"{file} is a '{config.trainer}' config; run it with: flenwheel train {config.trainer}"
            )
        config.trainer = kind
    elif config.trainer is None:
        choices = " or ".join(f"'trainer: {name}'" for name in family_names())
        raise ConfigError(f"{file} does not say which trainer it is for; add {choices}")
    return config


def save_config(config: TrainConfig, path: str | Path) -> Path:
    destination = Path(path)
    atomic_write_text(destination, config.to_yaml())
    return destination
