"""Edit templates for enrichment, and the balanced, seeded choice of edits per source.

The built-in families (``data/edit_templates.yaml``) are the seed's: background, lighting, style
and camera angle, each asking the model to keep the person identical, plus the Chinese camera
commands the "Multiple-angles" LoRA was trained on. Users add or replace families with YAML
files of the same shape.

The choice of edits is a pure function of (source position, seed, families, edits per source):
edit slots are dealt round-robin over a seeded order of families, and each family's values
round-robin over a seeded order of values. So family counts across the dataset differ by at most
one, a rerun plans exactly the same edits (which is what lets enrichment resume), and adding
sources later never changes the edits planned for the earlier ones.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..data.errors import FlenwheelError
from ..data.taxonomy import ANGLES

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "edit_templates.yaml"
TEMPLATE_FORMAT = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class TemplateError(FlenwheelError):
    """An edit-template file is missing, malformed, or asks for an unknown family."""


class EditValue(BaseModel):
    """One concrete change: the phrase put into the prompt and the words added to the caption.

    ``view`` (view-changing families) is the view the edit makes of a front-facing source, in the
    taxonomy's words; enrichment aims these edits at the views the sources lack.
    """

    model_config = ConfigDict(extra="forbid")

    phrase: str
    caption: str | None = None
    view: str | None = None

    @field_validator("view")
    @classmethod
    def _known_view(cls, value: str | None) -> str | None:
        if value is not None and value not in ANGLES:
            raise ValueError(f"'{value}' is not a known view; use one of {', '.join(ANGLES)}")
        return value


class EditFamily(BaseModel):
    """One kind of change (background, lighting...) with its prompt template and values."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    prompt: str
    caption: str = "{value}"
    values: dict[str, EditValue]
    changes_view: bool = False
    keep_identity: bool = True
    lora_match: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, raw: Any) -> Any:
        if isinstance(raw, list):
            raw = {str(item): str(item) for item in raw}
        if not isinstance(raw, dict) or not raw:
            raise ValueError("needs at least one value (a mapping of name: phrase)")
        return {str(key): {"phrase": value} if isinstance(value, str) else value
                for key, value in raw.items()}

    @model_validator(mode="after")
    def _placeholders(self) -> EditFamily:
        if "{value}" not in self.prompt:
            raise ValueError("prompt must contain {value}")
        if self.keep_identity and "{keep_identity}" not in self.prompt:
            raise ValueError("prompt must contain {keep_identity} "
                             "(or set keep_identity: false and say it in the prompt)")
        if self.lora_match is not None:
            re.compile(self.lora_match)
        return self

    def prompt_for(self, value: str, keep_identity: str) -> str:
        text = self.prompt.replace("{value}", self.values[value].phrase)
        return text.replace("{keep_identity}", keep_identity)

    def caption_for(self, value: str) -> str:
        return self.values[value].caption or self.caption.replace("{value}", value)


class EditTemplates(BaseModel):
    """All families available to one enrichment run."""

    model_config = ConfigDict(extra="forbid")

    format: int = TEMPLATE_FORMAT
    keep_identity: str
    reference_note: str = ""
    families: dict[str, EditFamily] = Field(default_factory=dict)

    def family(self, name: str) -> EditFamily:
        if name not in self.families:
            raise TemplateError(f"unknown edit family '{name}'; available: {', '.join(self.families)}")
        return self.families[name]

    def prompt(self, family: str, value: str, with_reference: bool = False) -> str:
        """The full instruction sent to Qwen-Image-Edit for one edit."""
        text = self.family(family).prompt_for(value, self.keep_identity)
        return f"{text} {self.reference_note}".strip() if with_reference and self.reference_note else text

    def to_json(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        chosen = list(names) if names is not None else list(self.families)
        return {
            "keep_identity": self.keep_identity,
            "reference_note": self.reference_note,
            "families": {name: self.family(name).model_dump(exclude={"name"}) for name in chosen},
        }


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TemplateError(f"edit-template file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path} is not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path} must hold a mapping with a 'families' key")
    if data.get("format", TEMPLATE_FORMAT) != TEMPLATE_FORMAT:
        raise TemplateError(f"{path} has format {data.get('format')}; "
                            f"this FLENwheel reads format {TEMPLATE_FORMAT}")
    return data


def _families(raw: Any, path: Path) -> dict[str, EditFamily]:
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: 'families' must be a mapping of family name to its template")
    families = {}
    for name, body in raw.items():
        if not _NAME.match(str(name)):
            raise TemplateError(f"{path}: family name '{name}' must be lower-case letters, digits, "
                                "'_' or '-'")
        try:
            families[str(name)] = EditFamily.model_validate({**(body or {}), "name": str(name)})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or name}: {e['msg']}"
                                 for e in exc.errors())
            raise TemplateError(f"{path}: family '{name}': {problems}") from None
    return families


def load_templates(extra: Sequence[str | Path] = ()) -> EditTemplates:
    """The built-in families, with each user file's families added (same name replaces)."""
    base = _read_yaml(BUILTIN_TEMPLATES)
    templates = EditTemplates(
        keep_identity=" ".join(str(base["keep_identity"]).split()),
        reference_note=" ".join(str(base.get("reference_note", "")).split()),
        families=_families(base.get("families"), BUILTIN_TEMPLATES),
    )
    for item in extra:
        path = Path(item).expanduser()
        data = _read_yaml(path)
        if "families" not in data:
            raise TemplateError(f"{path} has no 'families' mapping; "
                                f"see {BUILTIN_TEMPLATES.name} for the shape")
        templates.families.update(_families(data["families"], path))
        for key in ("keep_identity", "reference_note"):
            if key in data:
                setattr(templates, key, " ".join(str(data[key]).split()))
    return templates


def default_families(templates: EditTemplates, lora_paths: Iterable[str] = ()) -> list[str]:
    """Families used when none are named: all without ``lora_match``, plus those whose LoRA is loaded."""
    names = [Path(path).name for path in lora_paths]
    return [
        name for name, family in templates.families.items()
        if family.lora_match is None or any(re.search(family.lora_match, n, re.IGNORECASE) for n in names)
    ]


@dataclass(frozen=True)
class PlannedEdit:
    """One edit of one source: which family and value, its position in the whole plan, and why an
    aimed plan chose the value."""

    source_index: int
    slot: int
    family: str
    value: str
    plan_index: int
    why: str | None = None


def _weighted_cycle(order: list[str], weights: dict[str, float], count: int) -> list[str]:
    """``count`` picks in proportion to ``weights`` (smooth weighted round robin), the heaviest first and
    ties in ``order``; equal weights give plain round robin over ``order``."""
    total = sum(weights.get(v, 1.0) for v in order)
    current = dict.fromkeys(order, 0.0)
    picks = []
    for _ in range(count):
        for value in order:
            current[value] += weights.get(value, 1.0)
        best = max(order, key=lambda v: (current[v], -order.index(v)))
        current[best] -= total
        picks.append(best)
    return picks


def _seeded_orders(templates: EditTemplates, families: Sequence[str],
                   seed: int) -> tuple[list[str], dict[str, list[str]]]:
    rng = random.Random(f"flenwheel-enrich:{seed}")
    order = sorted(families)
    rng.shuffle(order)
    values = {}
    for name in sorted(families):
        listed = list(templates.family(name).values)
        rng.shuffle(listed)
        values[name] = listed
    return order, values


def plan_edits(templates: EditTemplates, families: Sequence[str], source_count: int, per_source: int,
               seed: int, aims: dict[str, tuple[float, str]] | None = None) -> list[PlannedEdit]:
    """The edits for ``source_count`` sources; see the module docstring for why it is built this way.

    ``aims`` (family/value -> weight, why) shares a family's slots among its values by weight
    instead of evenly: an aimed plan gives more slots to the views the sources lack.
    """
    if not families:
        raise TemplateError("no edit families chosen")
    if len(set(families)) != len(families):
        raise TemplateError(f"edit families are listed twice: {', '.join(families)}")
    if per_source < 1:
        raise TemplateError(f"edits per source must be at least 1 (the seed asks for 3-5), not {per_source}")
    for name in families:
        templates.family(name)
    order, values = _seeded_orders(templates, families, seed)
    aims = aims or {}
    turns = source_count * per_source // len(order) + 1
    cycles = {family: _weighted_cycle(listed, {v: aims[f"{family}/{v}"][0] for v in listed
                                               if f"{family}/{v}" in aims}, turns)
              for family, listed in values.items()}
    plan = []
    for source_index in range(source_count):
        for slot in range(per_source):
            position = source_index * per_source + slot
            family = order[position % len(order)]
            value = cycles[family][position // len(order)]
            why = aims.get(f"{family}/{value}", (1.0, None))[1]
            plan.append(PlannedEdit(source_index, slot, family, value, position, why))
    return plan
