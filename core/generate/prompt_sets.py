"""Generation prompt sets: which images step 1.5 asks FLUX + the character LoRA for, and with which seeds.

The built-in set (``data/prompt_sets.yaml``) holds the seed's four families: new angles,
expressions, scenarios and poses, tagged with the taxonomy's words so that the records say which
view, expression or pose each image targets. Users extend or replace it with YAML files of the
same shape.

A plan is a pure function of (set, subject, variants, run seed, run settings): every image gets a
seed derived from the run seed, the prompt id and the variant number (or one the YAML pins). So a
rerun plans exactly the same images, which is what lets an interrupted run resume and lets a
comparison of LoRA v1 and v2 use the same seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..data.errors import FlenwheelError
from ..data.taxonomy import ANGLES, EXPRESSIONS, POSES

if TYPE_CHECKING:
    from ..data.project import Project

BUILTIN_PROMPTS = Path(__file__).resolve().parent / "prompt_sets.yaml"
PROMPT_FORMAT = 1
TRIGGER = "[trigger]"
FAMILIES = ("angles", "expressions", "scenarios", "poses")
MAX_VARIANTS = 64


class PromptSetError(FlenwheelError):
    """A prompt file is unreadable or invalid; the message names the file and the prompt."""


class _Settings(BaseModel):
    """Render settings a set, a prompt or a run may give; unset fields fall through to the next level."""

    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(None, ge=64, le=4096, multiple_of=16)
    height: int | None = Field(None, ge=64, le=4096, multiple_of=16)
    steps: int | None = Field(None, ge=1, le=200)
    guidance: float | None = Field(None, ge=0, le=30)
    true_cfg: float | None = Field(None, ge=1, le=30)
    negative_prompt: str | None = None


class _Defaults(_Settings):
    variants: int | None = Field(None, ge=1, le=MAX_VARIANTS)


class _Prompt(_Settings):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    prompt: str = Field(min_length=1)
    angle: str | None = None
    expression: str | None = None
    pose: str | None = None
    seeds: list[int] | None = None

    @field_validator("angle", "expression", "pose")
    @classmethod
    def _known_word(cls, value: str | None, info: Any) -> str | None:
        allowed = {"angle": ANGLES, "expression": EXPRESSIONS, "pose": POSES}[info.field_name]
        if value is not None and value not in allowed:
            raise ValueError(f"'{value}' is not a known {info.field_name}; use one of {', '.join(allowed)}")
        return value


class _Family(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    prompts: list[_Prompt]

    @model_validator(mode="after")
    def _unique_ids(self) -> _Family:
        ids = [prompt.id for prompt in self.prompts]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"prompt ids repeat: {', '.join(repeated)}")
        return self


class _PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = PROMPT_FORMAT
    builtin: bool = True
    defaults: _Defaults = Field(default_factory=_Defaults)
    families: dict[str, _Family] = Field(default_factory=dict)


@dataclass(frozen=True)
class RenderSettings:
    """How one image is rendered; ``negative_prompt`` acts only when the pipeline runs CFG: true CFG at
    ``true_cfg`` > 1, or the pipeline's own CFG at ``guidance`` > 1 (``generate.applied_settings``)."""

    width: int = 1024
    height: int = 1024
    steps: int = 28
    guidance: float = 3.5
    true_cfg: float = 1.0
    negative_prompt: str | None = None

    def merged(self, values: dict[str, Any]) -> RenderSettings:
        """These settings with every non-None value of ``values`` applied."""
        known = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v for k, v in values.items() if k in known and v is not None})


@dataclass(frozen=True)
class GenerationPrompt:
    """One prompt of a set, still with ``[trigger]`` in its text."""

    id: str
    family: str
    text: str
    angle: str | None = None
    expression: str | None = None
    pose: str | None = None
    seeds: tuple[int, ...] = ()
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Named by a user's prompt file (not the built-in set): an aimed plan keeps its variants.
    from_user: bool = False


@dataclass
class PromptSet:
    prompts: list[GenerationPrompt]
    defaults: RenderSettings
    variants: int
    sources: list[str]

    def families(self) -> list[str]:
        return list(dict.fromkeys(prompt.family for prompt in self.prompts))

    def select(self, families: Sequence[str] | None = None, ids: Sequence[str] | None = None) -> PromptSet:
        """The prompts of some families and/or ids, with an error naming what does not exist."""
        chosen = self.prompts
        if families:
            unknown = sorted(set(families) - set(self.families()))
            if unknown:
                raise PromptSetError(
                    f"unknown prompt families {', '.join(unknown)}; have {', '.join(self.families())}"
                )
            chosen = [p for p in chosen if p.family in families]
        if ids:
            unknown = sorted(set(ids) - {p.id for p in self.prompts})
            if unknown:
                raise PromptSetError(f"unknown prompt ids {', '.join(unknown)}")
            chosen = [p for p in chosen if p.id in ids]
        return dataclasses.replace(self, prompts=chosen)

    def first_of_each_family(self) -> PromptSet:
        """One prompt per family: a quick, representative set (the comparison grid's default rows)."""
        firsts = {p.family: p for p in reversed(self.prompts)}
        return dataclasses.replace(self, prompts=[p for p in self.prompts if firsts[p.family] is p])


@dataclass(frozen=True)
class PlannedImage:
    """One image to generate: the expanded prompt, its seed and settings, and what it targets."""

    prompt_id: str
    family: str
    variant: int
    prompt: str
    seed: int
    settings: RenderSettings
    angle: str | None = None
    expression: str | None = None
    pose: str | None = None
    aim: str | None = None

    def tags(self) -> dict[str, Any]:
        """Record fields from the prompt set (targets only when the prompt has them, and why an aimed
        plan gave the prompt its share)."""
        fields: dict[str, Any] = {"family": self.family, "prompt_id": self.prompt_id, "variant": self.variant}
        if self.aim:
            fields["aim"] = self.aim
        fields.update(
            {
                k: v
                for k, v in (("angle", self.angle), ("expression", self.expression), ("pose", self.pose))
                if v is not None
            }
        )
        return fields


def _parse(text: str, origin: str) -> _PromptFile:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PromptSetError(f"{origin} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PromptSetError(
            f"{origin} must be a mapping with 'families' (see the built-in {BUILTIN_PROMPTS.name})"
        )
    try:
        parsed = _PromptFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PromptSetError(f"{origin}: {problems}") from None
    if parsed.format > PROMPT_FORMAT:
        raise PromptSetError(f"{origin} has format {parsed.format}, newer than this FLENwheel understands")
    return parsed


def _read(path: str | Path) -> _PromptFile:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptSetError(f"prompt file {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptSetError(f"cannot read prompt file {file}: {exc}") from None
    return _parse(text, str(file))


def load_prompt_set(files: Iterable[str | Path] = (), builtin: bool = True) -> PromptSet:
    """The built-in set extended by ``files`` in order (same id replaces, new families are added)."""
    layers = [(str(BUILTIN_PROMPTS), _read(BUILTIN_PROMPTS))] if builtin else []
    for file in files:
        parsed = _read(file)
        if not parsed.builtin:
            layers = [(origin, layer) for origin, layer in layers if origin != str(BUILTIN_PROMPTS)]
        layers.append((str(Path(file).expanduser()), parsed))
    defaults: dict[str, Any] = {}
    prompts: dict[tuple[str, str], GenerationPrompt] = {}
    for origin, layer in layers:
        defaults.update(layer.defaults.model_dump(exclude_none=True))
        for family, entries in layer.families.items():
            for entry in entries.prompts:
                settings = entry.model_dump(include=set(_Settings.model_fields), exclude_none=True)
                prompts[(family, entry.id)] = GenerationPrompt(
                    id=entry.id,
                    family=family,
                    text=entry.prompt,
                    angle=entry.angle,
                    expression=entry.expression,
                    pose=entry.pose,
                    seeds=tuple(entry.seeds or ()),
                    settings=settings,
                    from_user=origin != str(BUILTIN_PROMPTS),
                )
    if not prompts:
        raise PromptSetError("the prompt set is empty: give a prompt file with at least one prompt")
    variants = defaults.pop("variants", 4)
    return PromptSet(
        prompts=list(prompts.values()),
        defaults=RenderSettings().merged(defaults),
        variants=variants,
        sources=[origin for origin, _ in layers],
    )


def derive_seed(base_seed: int, prompt_id: str, variant: int) -> int:
    """A stable seed per (run seed, prompt, variant), spread over 31 bits so ComfyUI's INT widgets take it."""
    digest = hashlib.sha256(f"{base_seed}:{prompt_id}:{variant}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def expand(text: str, subject: str, token: str, origin: str) -> str:
    """Fill in ``[trigger]``; a prompt that then lacks the instance token is refused."""
    expanded = text.replace(TRIGGER, subject).strip()
    if token not in expanded:
        raise PromptSetError(
            f"prompt {origin} does not contain {TRIGGER} or the instance token '{token}': "
            f"write it in, e.g. 'photo of {TRIGGER} ...'"
        )
    return expanded


def plan_images(
    prompt_set: PromptSet,
    subject: str,
    token: str,
    variants: int | None = None,
    base_seed: int = 0,
    run_settings: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
    reasons: dict[str, str] | None = None,
) -> list[PlannedImage]:
    """Every image of a run, prompt by prompt. A prompt's own settings win over the run's, which win
    over the set's defaults (a pose prompt may ask for a portrait frame whatever the run's size).

    ``counts`` and ``reasons`` (by ``family/id``) come from an aimed allocation (``aim.allocate``):
    variants per prompt instead of the same number for all, and why.
    """
    usual = prompt_set.variants if variants is None else variants
    if not 1 <= usual <= MAX_VARIANTS:
        raise PromptSetError(f"variants must be between 1 and {MAX_VARIANTS}, not {usual}")
    base = prompt_set.defaults.merged(run_settings or {})
    planned = []
    for prompt in prompt_set.prompts:
        origin = f"'{prompt.family}/{prompt.id}'"
        settings = base.merged(prompt.settings)
        if settings.negative_prompt and settings.true_cfg <= 1.0:
            raise PromptSetError(
                f"prompt {origin} has a negative prompt but true_cfg {settings.true_cfg}: negative "
                "prompts only act with true CFG; set true_cfg to 1.5 or more (twice the time)"
            )
        if settings.true_cfg <= 1.0 or not settings.negative_prompt:
            settings = dataclasses.replace(settings, negative_prompt=None, true_cfg=1.0)
        text = expand(prompt.text, subject, token, origin)
        key = f"{prompt.family}/{prompt.id}"
        for variant in range((counts or {}).get(key, usual)):
            seed = (
                prompt.seeds[variant]
                if variant < len(prompt.seeds)
                else derive_seed(base_seed, prompt.id, variant)
            )
            planned.append(
                PlannedImage(
                    prompt_id=prompt.id,
                    family=prompt.family,
                    variant=variant,
                    prompt=text,
                    seed=seed,
                    settings=settings,
                    angle=prompt.angle,
                    expression=prompt.expression,
                    pose=prompt.pose,
                    aim=(reasons or {}).get(key),
                )
            )
    return planned


def plan_run(
    project: Project,
    files: Sequence[str | Path] = (),
    builtin: bool = True,
    families: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    variants: int | None = None,
    base_seed: int = 0,
    run_settings: dict[str, Any] | None = None,
    first_of_each_family: bool = False,
) -> tuple[PromptSet, list[PlannedImage]]:
    """Load, select and plan in one call (what the CLI and the nodes do)."""
    prompt_set = load_prompt_set(files, builtin).select(families, ids)
    if first_of_each_family:
        prompt_set = prompt_set.first_of_each_family()
    return prompt_set, plan_images(
        prompt_set, project.subject, project.token, variants, base_seed, run_settings
    )
