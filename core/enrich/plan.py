"""What an enrichment run will make, and which dataset version it writes into.

The settings and the source set decide the plan (``edit_prompts.plan_edits``); the plan, the model,
its LoRAs and the gate decide a ``settings_key`` stored in the version's info. A rerun with the
same key continues the latest open version and skips edits already on disk, which is how an
interrupted run resumes; any other key starts a new version, so one version never mixes two sets
of settings. A record whose image file vanished is dropped so that its edit is made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..curate.curation import make_caption
from ..data.dataset import DatasetVersion
from ..data.errors import DatasetError, FlenwheelError
from ..data.handles import DatasetHandle
from ..data.images import pixel_hash
from ..data.records import ImageRecord
from ..data.taxonomy import CARD_ANGLES
from ..identity.coverage import count_coverage
from ..models.qwen_edit_loader import model_label
from .edit_prompts import EditTemplates, PlannedEdit, default_families, load_templates, plan_edits

if TYPE_CHECKING:
    from PIL import Image

    from ..data.project import Project
    from ..identity.gate import IdentityGate
    from ..models.pipelines import PipelineHandle

LOG = logging.getLogger("flenwheel.enrich")
STAGE = "enriched"
#: Every tenth planned edit is flagged for a manual look, whatever the identity gate says.
SAMPLE_EVERY = 10


@dataclass(frozen=True)
class EnrichSettings:
    """Everything that decides which edits are made and how; recorded in the version's info."""

    per_source: int = 4
    families: tuple[str, ...] = ()
    seed: int = 0
    steps: int = 40
    true_cfg: float = 4.0
    negative_prompt: str = " "
    width: int | None = None
    height: int | None = None
    pixels: int = 1024 * 1024
    vae_pixels: int | None = None
    condition_pixels: int | None = None
    max_retries: int = 2
    reference: str = "none"
    skip_flagged: bool = False
    template_files: tuple[str, ...] = ()
    aim: bool = True

    def validate(self) -> None:
        checks = [
            (1 <= self.per_source <= 20,
             f"edits per source must be 1-20 (the seed asks for 3-5), not {self.per_source}"),
            (self.steps >= 1, f"steps must be at least 1, not {self.steps}"),
            (self.true_cfg >= 0, f"true_cfg must not be negative, not {self.true_cfg}"),
            (0 <= self.max_retries <= 10, f"identity retries must be 0-10, not {self.max_retries}"),
            (self.reference in ("none", "other_source", "image"),
             f"reference must be none, other_source or image, not '{self.reference}'"),
            (self.pixels >= 32 * 32, f"pixels must be at least {32 * 32}, not {self.pixels}"),
        ]
        for side in (self.width, self.height):
            checks.append((side is None or (side >= 32 and side % 16 == 0),
                           f"width and height must be multiples of 16 and at least 32, not {side} "
                           f"(try {max(32, (side or 0) // 16 * 16)})"))
        for ok, message in checks:
            if not ok:
                raise FlenwheelError(message)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["families"], data["template_files"] = list(self.families), list(self.template_files)
        return data


@dataclass
class EnrichPlan:
    """Resolved inputs of a run: sources, templates, families and the planned edits."""

    source: DatasetHandle
    records: list[ImageRecord]
    templates: EditTemplates
    families: list[str]
    edits: list[PlannedEdit]
    aim: ViewAim | None = None

    def key(self, edit: PlannedEdit) -> str:
        """The stable identity of an edit: its source's content id and its slot."""
        return f"{self.records[edit.source_index].id}:{edit.slot}"

    def reference_for(self, index: int) -> ImageRecord | None:
        """Another source as the second view: the next one with a different known angle, else the next."""
        count = len(self.records)
        if count < 2:
            return None
        own = self.records[index].angle
        others = [self.records[(index + step) % count] for step in range(1, count)]
        differing = [r for r in others if r.angle not in (None, "unknown", own)]
        return (differing or others)[0]


def _side(view: str | None) -> str | None:
    return view.rpartition("-")[2] if view and view.startswith(("half-", "profile-")) else None


@dataclass
class ViewAim:
    """The views the sources show (measured or curated), those they lack, and the weight of each
    view-changing edit: 1, plus 2 for a lacking view it makes, plus 1 per lacking view on its side."""

    views: dict[str, int]
    lacking: list[str]
    weights: dict[str, tuple[float, str]]

    def to_json(self) -> dict[str, Any]:
        return {"source_views": self.views, "lacking": self.lacking,
                "edits": {key: {"weight": weight, "why": why} for key, (weight, why) in self.weights.items()}}

    def lines(self) -> list[str]:
        if not self.lacking:
            return ["view edits not aimed: the sources show every card view, or none is measured or tagged"]
        return [f"view edits aimed at what the sources lack ({', '.join(self.lacking)}):",
                *(f"  {key}: weight {weight:g} ({why})" for key, (weight, why) in self.weights.items())]


def aim_views(templates: EditTemplates, families: Sequence[str], records: Sequence[ImageRecord]) -> ViewAim:
    """Weights for the view-changing edits by the views ``records`` lack (see ``ViewAim``)."""
    cover = count_coverage(records)
    lacking = cover.missing_views()
    weights: dict[str, tuple[float, str]] = {}
    for name in families:
        family = templates.family(name)
        for value, spec in family.values.items():
            if not (family.changes_view and spec.view):
                continue
            hits = [view for view in lacking if view == spec.view or (_side(view) and _side(view) == _side(spec.view))]
            if hits:
                weight = 1.0 + sum(2.0 if view == spec.view else 1.0 for view in hits)
                weights[f"{name}/{value}"] = (weight, f"makes {spec.view}; the sources have no "
                                                      f"{' or '.join(hits)} view")
    views = {view: cover.views[view] for view in CARD_ANGLES}
    return ViewAim(views, lacking, weights)


def make_plan(project: Project, settings: EnrichSettings, source: DatasetHandle | None = None,
              lora_paths: Sequence[str] = (), log: Callable[[str], None] = LOG.info) -> EnrichPlan:
    """Which edits a run would make (``flenwheel enrich --dry-run`` prints this without a model)."""
    settings.validate()
    handle = source or DatasetHandle(project.dataset("source"))
    records = handle.records()
    if settings.skip_flagged:
        records = [r for r in records if not r.quality or r.quality.get("passed", True)]
    if not records:
        raise DatasetError(f"{handle.label} has no source images to enrich; "
                           "add some with: flenwheel source add")
    templates = load_templates(settings.template_files)
    families = list(settings.families) or default_families(templates, lora_paths)
    available = default_families(templates, lora_paths)
    for name in families:
        pattern = templates.family(name).lora_match
        if pattern and name not in available:
            log(f"note: family '{name}' is meant for a LoRA matching '{pattern}', and none is loaded")
    aim = aim_views(templates, families, records) if settings.aim else None
    edits = plan_edits(templates, families, len(records), settings.per_source, settings.seed,
                       aim.weights if aim else None)
    return EnrichPlan(handle, records, templates, families, edits, aim)


def version_info(plan: EnrichPlan, handle: PipelineHandle, settings: EnrichSettings,
                 scorer: IdentityGate | None, reference: Image.Image | None) -> dict[str, Any]:
    """The version's info: every setting that shapes its images, and the key that identifies them."""
    info = {
        "source_dataset": plan.source.label,
        "source_subset": sorted(plan.source.ids) if plan.source.ids is not None else None,
        "model": model_label(handle),
        "model_source": handle.source,
        "precision": {k: handle.options.get(k) for k in ("dtype", "quantize", "quantize_text_encoder")},
        "loras": [{k: ref.get(k) for k in ("path", "strength", "sha256")} for ref in handle.loras],
        "settings": settings.to_json(),
        "families": plan.families,
        "templates": plan.templates.to_json(plan.families),
        "aim": plan.aim.to_json() if plan.aim else None,
        "reference_image": pixel_hash(reference) if reference is not None else None,
        "identity_gate": None if scorer is None else {
            "scorer": type(scorer).__name__, "tolerance": getattr(scorer, "tolerance", None),
            "max_retries": settings.max_retries,
        },
    }
    canonical = json.dumps(info, sort_keys=True, ensure_ascii=False, default=str)
    info["settings_key"] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return info


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in new if k != "settings_key" and old.get(k) != new.get(k)]
    settings = [k for k in new["settings"] if (old.get("settings") or {}).get(k) != new["settings"][k]]
    return ", ".join([k for k in keys if k != "settings"] + settings) or "unknown"


def target_version(project: Project, info: dict[str, Any], version: str | None = None,
                   new_version: bool = False) -> DatasetVersion:
    """The version to write into: the named one, else the latest open one with the same settings, else new."""
    if version and version in project.versions(STAGE):
        dataset = project.dataset(STAGE, version)
        old = dataset.load()
        if old.info.get("settings_key") != info["settings_key"]:
            raise DatasetError(
                f"{dataset.label} was made with other settings ({_differences(old.info, info)} differ); "
                "rerun with the same settings to resume it, or leave the version out to start a new one"
            )
        if old.status == "finished":
            raise dataset.finished_error()
        return dataset
    latest = project.latest_version(STAGE)
    if latest and not version and not new_version:
        dataset = project.dataset(STAGE, latest)
        old = dataset.load()
        if old.status != "finished" and old.info.get("settings_key") == info["settings_key"]:
            return dataset
    return project.create_dataset(STAGE, version, info=info)


def done_edits(dataset: DatasetVersion) -> dict[str, ImageRecord]:
    """Edits already on disk by key; a record whose file vanished is dropped so it is made again."""
    done, stale = {}, []
    for record in dataset.records:
        key = (record.model_extra or {}).get("edit_key")
        if key is None:
            continue
        if dataset.image_path(record).is_file():
            done[key] = record
        else:
            stale.append(record.id)
    if stale:
        with dataset.edit() as change:
            change.metadata.images[:] = [r for r in change.metadata.images if r.id not in stale]
    return done


def planned_fields(project: Project, plan: EnrichPlan, edit: PlannedEdit) -> dict[str, Any]:
    """The lineage an edit's record carries before any model runs: source, caption, family, key.

    Shared by the engine and by native ComfyUI graphs, so both write records that review,
    training and the editor flywheel read the same way.
    """
    source = plan.records[edit.source_index]
    family = plan.templates.family(edit.family)
    expression = source.expression or "unknown"
    if family.changes_view:
        base = make_caption(project, None, "unknown", expression)
    else:
        base = source.caption or make_caption(project, None, source.angle or "unknown", expression)
    return {
        "parents": [source.id],
        "caption": f"{base}, {family.caption_for(edit.value)}",
        "angle": None if family.changes_view else source.angle,
        "expression": source.expression,
        "source_dataset": plan.source.label, "source_file": source.filename,
        "family": edit.family, "value": edit.value, **({"aim": edit.why} if edit.why else {}),
        "edit_key": plan.key(edit), "plan_index": edit.plan_index,
        "sample_for_manual_check": (edit.plan_index + 1) % SAMPLE_EVERY == 0,
    }
