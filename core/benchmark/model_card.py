"""The model card definition: which 23 images the benchmark asks for, how, and how each is checked.

The card is data (``data/model_card.yaml``) so users can reword prompts, change the number of
tries, the limits of the checks, or add cells without touching code: a user file is merged over
the built-in one (mappings key by key, lists and values replaced). ``load_card`` validates the
result and ``Card.cells()`` expands it into cells: one per portrait angle x expression and one per
pose, each with its prompt, render settings, checks and one fixed seed per try.

Seeds come from ``prompt_sets.derive_seed(base_seed, cell id, try)`` (or are pinned per cell),
so every LoRA version is judged on exactly the same seeds, and a rerun knows what it already has.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..data.errors import FlenwheelError
from ..data.taxonomy import ANGLES, EXPRESSIONS, POSES
from ..generate.prompt_sets import TRIGGER, RenderSettings, derive_seed, expand
from ..identity.references import ARCFACE_TOLERANCE, DEFAULT_TOLERANCE, IDENTITY_MODEL_DEFAULT

BUILTIN_CARD = Path(__file__).resolve().parent / "model_card.yaml"
CARD_FORMAT = 1
CHECKS = ("identity", "one_face", "resolution", "sharpness", "head_angle", "expression", "body_pose")
MAX_TRIES = 32
CellKind = Literal["portrait", "pose"]


class CardError(FlenwheelError):
    """The card file is unreadable or invalid; the message names the file and the field."""


def _known_checks(values: list[str]) -> list[str]:
    unknown = [name for name in values if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {', '.join(unknown)}; use {', '.join(CHECKS)}")
    return values


CheckList = Annotated[list[str], AfterValidator(_known_checks)]


class _Render(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(1024, ge=64, le=4096, multiple_of=16)
    height: int = Field(1024, ge=64, le=4096, multiple_of=16)
    steps: int = Field(28, ge=1, le=200)
    guidance: float = Field(3.5, ge=0, le=30)


class Limits(BaseModel):
    """Thresholds of the automatic checks (documented in data/model_card.yaml)."""

    model_config = ConfigDict(extra="forbid")

    identity_tolerance: Annotated[float, Field(gt=0, le=2)] | Literal["sources"] = DEFAULT_TOLERANCE
    identity_model: str = Field(IDENTITY_MODEL_DEFAULT, min_length=1, max_length=500)
    arcface_tolerance: float = Field(ARCFACE_TOLERANCE, gt=0, le=2)
    min_side: int = Field(1024, ge=1)
    sharpness_factor: float = Field(0.25, gt=0, le=10)
    front_max_yaw: float = Field(20, gt=0, lt=90)
    half_max_yaw: float = Field(50, gt=0, lt=90)
    pose_min_visibility: float = Field(0.5, ge=0, le=1)
    face_detector: Literal["mediapipe", "hog", "cnn"] = "mediapipe"
    detect_side: int = Field(512, ge=0)
    view_margin: float = Field(3, ge=0, lt=10)
    min_face: int = Field(40, ge=8, le=1024)


class _Portraits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    angles: list[str]
    expressions: list[str]
    angle_words: dict[str, str] = Field(default_factory=dict)
    expression_words: dict[str, str] = Field(default_factory=dict)
    checks: CheckList

    @field_validator("angles")
    @classmethod
    def _angles(cls, values: list[str]) -> list[str]:
        return _vocabulary(values, ANGLES, "angle")

    @field_validator("expressions")
    @classmethod
    def _expressions(cls, values: list[str]) -> list[str]:
        return _vocabulary(values, EXPRESSIONS, "expression")


class _Pose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    pose: str
    view: Literal["front", "side", "back", "any"] = "any"
    prompt: str

    @field_validator("pose")
    @classmethod
    def _pose(cls, value: str) -> str:
        return _vocabulary([value], POSES, "pose")[0]


class _Poses(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: CheckList
    items: list[_Pose] = Field(default_factory=list)


class _CellSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: list[int] | None = None
    width: int | None = Field(None, ge=64, le=4096, multiple_of=16)
    height: int | None = Field(None, ge=64, le=4096, multiple_of=16)
    steps: int | None = Field(None, ge=1, le=200)
    guidance: float | None = Field(None, ge=0, le=30)
    negative_prompt: str | None = None
    true_cfg: float | None = Field(None, ge=1, le=30)
    checks: CheckList | None = None


class _CardFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = CARD_FORMAT
    target: float = Field(0.8, gt=0, le=1)
    tries: int = Field(4, ge=1, le=MAX_TRIES)
    base_seed: int = 0
    render: _Render = Field(default_factory=_Render)
    limits: Limits = Field(default_factory=Limits)
    portraits: _Portraits
    poses: _Poses
    cells: dict[str, _CellSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> _CardFile:
        if self.limits.front_max_yaw >= self.limits.half_max_yaw:
            raise ValueError("limits.front_max_yaw must be below limits.half_max_yaw")
        ids = [p.id for p in self.poses.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"pose ids repeat: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
        return self


def _vocabulary(values: list[str], allowed: Sequence[str], what: str) -> list[str]:
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; use words of {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise ValueError(f"a {what} is listed twice")
    return values


@dataclass(frozen=True)
class Cell:
    """One image the card asks for, with one seed per try (try 0 is the first try)."""

    id: str
    kind: CellKind
    prompt: str
    settings: RenderSettings
    seeds: tuple[int, ...]
    checks: tuple[str, ...]
    angle: str | None = None
    expression: str | None = None
    pose: str | None = None
    view: str | None = None

    @property
    def label(self) -> str:
        """Short caption for the card: ``profile-left / smiling`` or ``t-pose``."""
        return f"{self.angle} / {self.expression}" if self.kind == "portrait" else f"{self.pose} ({self.view})"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        """Rebuild a cell stored in a benchmark dataset's info (so a report needs no card file)."""
        return cls(
            id=data["id"],
            kind=data["kind"],
            prompt=data["prompt"],
            settings=RenderSettings(**data["settings"]),
            seeds=tuple(data["seeds"]),
            checks=tuple(data["checks"]),
            angle=data.get("angle"),
            expression=data.get("expression"),
            pose=data.get("pose"),
            view=data.get("view"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prompt": self.prompt,
            "angle": self.angle,
            "expression": self.expression,
            "pose": self.pose,
            "view": self.view,
            "seeds": list(self.seeds),
            "checks": list(self.checks),
            "settings": vars(self.settings),
        }


@dataclass
class Card:
    """A validated card and where it came from."""

    data: _CardFile
    sources: list[str] = field(default_factory=list)

    @property
    def tries(self) -> int:
        return self.data.tries

    @property
    def target(self) -> float:
        return self.data.target

    @property
    def base_seed(self) -> int:
        return self.data.base_seed

    @property
    def render(self) -> dict[str, Any]:
        """The card-wide render settings (cells may override them)."""
        return self.data.render.model_dump()

    @property
    def limits(self) -> Limits:
        return self.data.limits

    @property
    def angles(self) -> list[str]:
        return list(self.data.portraits.angles)

    @property
    def expressions(self) -> list[str]:
        return list(self.data.portraits.expressions)

    def cells(self, subject: str, token: str) -> list[Cell]:
        """Every cell in card order: portraits row by row (expression), then the poses."""
        portraits = self.data.portraits
        cells = []
        for expression in portraits.expressions:
            for angle in portraits.angles:
                text = (
                    portraits.prompt.replace("[angle]", portraits.angle_words.get(angle, angle))
                    .replace("[expression]", portraits.expression_words.get(expression, expression))
                )
                cells.append(self._cell(f"{angle}-{expression}", "portrait", text, subject, token,
                                        portraits.checks, angle=angle, expression=expression))
        for item in self.data.poses.items:
            cells.append(self._cell(item.id, "pose", item.prompt, subject, token, self.data.poses.checks,
                                    pose=item.pose, view=item.view, angle=item.view if item.view == "front" else None))
        unknown = sorted(set(self.data.cells) - {cell.id for cell in cells})
        if unknown:
            raise CardError(f"card settings name cells that do not exist: {', '.join(unknown)}")
        return cells

    def _cell(self, cell_id: str, kind: CellKind, text: str, subject: str, token: str,
              checks: list[str], **tags: Any) -> Cell:
        extra = self.data.cells.get(cell_id, _CellSettings())
        render = self.data.render.model_dump()
        render.update(extra.model_dump(include={"width", "height", "steps", "guidance"}, exclude_none=True))
        settings = RenderSettings(**render)
        if extra.negative_prompt and (extra.true_cfg or 1.0) > 1.0:
            settings = RenderSettings(**render, negative_prompt=extra.negative_prompt, true_cfg=extra.true_cfg)
        elif extra.negative_prompt:
            raise CardError(f"cell {cell_id}: a negative_prompt needs true_cfg above 1 (e.g. 1.5) to act")
        pinned = list(extra.seeds or [])
        seeds = tuple(
            pinned[i] if i < len(pinned) else derive_seed(self.data.base_seed, cell_id, i)
            for i in range(self.data.tries)
        )
        prompt = expand(text, subject, token, f"'{cell_id}'")
        return Cell(cell_id, kind, prompt, settings, seeds, tuple(extra.checks or checks), **tags)

    def to_json(self) -> dict[str, Any]:
        return {"sources": self.sources, **self.data.model_dump(mode="json")}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; lists and plain values replace."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CardError(f"card file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CardError(f"cannot read card file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise CardError(f"{path} must be a mapping (see the built-in {BUILTIN_CARD.name})")
    return raw


def load_card(files: Sequence[str | Path] = (), **overrides: Any) -> Card:
    """The built-in card, with ``files`` merged over it in order, then ``overrides`` (e.g. tries=2)."""
    data = _read(BUILTIN_CARD)
    sources = [str(BUILTIN_CARD)]
    for file in files:
        path = Path(file).expanduser()
        data = _merge(data, _read(path))
        sources.append(str(path))
    data = _merge(data, {key: value for key, value in overrides.items() if value is not None})
    try:
        parsed = _CardFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CardError(f"model card ({', '.join(sources)}): {problems}") from None
    if parsed.format > CARD_FORMAT:
        raise CardError(f"the card has format {parsed.format}, newer than this FLENwheel understands")
    if TRIGGER not in parsed.portraits.prompt:
        raise CardError(f"the portrait prompt must contain {TRIGGER} (the character's token and class word)")
    return Card(parsed, sources)
