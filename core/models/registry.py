"""Model families as data: one frozen record per base model, read by every place that needs one.

What a base model is - its role in the flywheel, its diffusers classes, where ComfyUI keeps its
files, how its LoRAs are named, how it trains - is written here once. The trainer config, the
loaders, the CLI choices, the node widgets, planning and the turn ask this module instead of
spelling a family name, so adding a base model is one entry here, one trainer adapter
(``trainers/families/``), one tiny-model builder and their tests (docs/adding-a-base-model.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from ..data.errors import FlenwheelError

Role = Literal["character", "editor"]
CHARACTER: Role = "character"
EDITOR: Role = "editor"
ROLES: tuple[Role, ...] = (CHARACTER, EDITOR)


class UnknownFamilyError(FlenwheelError):
    """A model family name that no registry entry (or alias) answers to."""


@dataclass(frozen=True)
class LoraLayout:
    """Where a family's LoRA versions live in a project and what their files are called.

    ``version_dir`` and ``file_stem`` are format strings over ``version`` (``v1``); ``project_key`` is
    the key of ``flenwheel.json``'s ``current`` map that names the newest trained version.
    """

    folder: str
    version_dir: str
    file_stem: str
    project_key: str

    def version_folder(self, root: Path, version: str) -> Path:
        return root / self.folder / self.version_dir.format(version=version)

    def file_name(self, version: str) -> str:
        return f"{self.file_stem.format(version=version)}.safetensors"

    def version_number(self, folder_name: str) -> int | None:
        """``2`` for the folder name of version ``v2`` (``char_v2`` for FLUX.1), else None."""
        prefix, _, suffix = self.version_dir.partition("{version}")
        match = re.fullmatch(f"{re.escape(prefix)}v([1-9][0-9]*){re.escape(suffix)}", folder_name)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class MemoryFigures:
    """Sizes behind the README's memory-per-card table (worked out from weights, not measured).

    ``cards`` maps a card size to the advice for this family on it.
    """

    transformer_params_b: float
    text_encoder_params_b: float
    cards: tuple[tuple[str, str], ...] = ()

    def row(self) -> str:
        """One line: parameter counts and the transformer's weight size in bf16 and NF4."""
        bf16 = self.transformer_params_b * 2
        nf4 = self.transformer_params_b * 0.5
        return (f"{self.transformer_params_b:g} B transformer, {self.text_encoder_params_b:g} B text encoder; "
                f"transformer weights ~{bf16:.0f} GB bf16, ~{nf4:.0f} GB NF4")


@dataclass(frozen=True)
class ModelFamily:
    """One base model family. ``name`` is what configs, commands and widgets use; aliases also resolve."""

    name: str
    title: str
    role: Role
    hub_id: str
    pipeline_class: str
    transformer_class: str
    #: every text encoder of the pipeline, and the big ones worth quantising
    text_encoders: tuple[str, ...]
    quantizable_text_encoders: tuple[str, ...]
    #: the ComfyUI model folder each single-file part is picked from: (part, folder) pairs
    comfy_folders: tuple[tuple[str, str], ...]
    lora: LoraLayout
    #: "module:Class" of its trainer adapter, relative to the pack (the trainer imports it lazily)
    trainer_adapter: str
    #: "module:function" of its tiny random-weight builder, relative to the pack
    tiny_builder: str
    memory: MemoryFigures
    training_defaults: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    sample_prompts: tuple[str, ...] = ()
    #: a pipeline folder's subfolder holding an image processor diffusers cannot load by itself
    processor_subfolder: str | None = None
    #: DDP must expect LoRA parameters that get no gradient (e.g. Qwen-Image's unused last text output)
    ddp_find_unused_parameters: bool = False
    aliases: tuple[str, ...] = ()
    #: the first ComfyUI release whose own LoraLoader maps every key of this family's LoRA files
    #: (None: every supported ComfyUI does); measured with tests/trainers/comfy_lora_check.py
    comfy_lora_since: str | None = None

    @property
    def trains_on_triplets(self) -> bool:
        """Editors learn from (source, edit prompt, target) triplets; character bases from images."""
        return self.role == EDITOR

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def comfy_folder(self, part: str) -> str:
        """The ComfyUI model folder (``diffusion_models``, ``vae``...) a single-file ``part`` lives in."""
        return dict(self.comfy_folders)[part]

    def comfy_lora_note(self, running: str | None) -> str | None:
        """What to tell a user whose ComfyUI (version ``running``; None outside ComfyUI) cannot load this
        family's LoRA with its own LoraLoader: FLENwheel's nodes still can, ComfyUI's would drop keys."""
        if self.comfy_lora_since is None or running is None:
            return None
        try:
            too_old = Version(running) < Version(self.comfy_lora_since)
        except InvalidVersion:
            return None
        if not too_old:
            return None
        shown = ".".join(self.comfy_lora_since.split(".")[:2])
        return (f"{self.title}: needs ComfyUI {shown} or newer to load this LoRA in ComfyUI's own LoraLoader "
                f"(this is ComfyUI {running}; FLENwheel's own loader nodes load it on any version)")


#: The seed's example values; learning_rate is left to the trainer config, whose default follows the
#: optimiser (1e-4 for Adam, 1.0 for prodigy).
_SEED_TRAINING: dict[str, Any] = {
    "lora_rank": 16,
    "batch_size": 1,
    "gradient_checkpointing": True,
    "mixed_precision": "bf16",
    "max_train_steps": 1500,
    "save_every": 250,
    "sample_every": 250,
    "resolution": 1024,
    "caption_dropout": 0.05,
    "keep_last_n": 3,
    "resume": "auto",
}

_REGISTRY: dict[str, ModelFamily] = {}


def register(entry: ModelFamily) -> ModelFamily:
    """Add a family; a name or alias already taken is a programming error, caught at import."""
    for name in entry.names():
        if name in _REGISTRY:
            raise ValueError(f"model family name '{name}' is registered twice")
    for name in entry.names():
        _REGISTRY[name] = entry
    return entry


FLUX1_DEV = register(ModelFamily(
    name="flux",
    aliases=("flux1-dev",),
    title="FLUX.1-dev",
    role=CHARACTER,
    hub_id="black-forest-labs/FLUX.1-dev",
    pipeline_class="FluxPipeline",
    transformer_class="FluxTransformer2DModel",
    text_encoders=("text_encoder", "text_encoder_2"),
    quantizable_text_encoders=("text_encoder_2",),
    comfy_folders=(("transformer", "diffusion_models"), ("vae", "vae"), ("clip_l", "text_encoders"),
                   ("t5", "text_encoders")),
    lora=LoraLayout("models/flux_lora", "char_{version}", "char_lora_{version}", "flux_lora"),
    trainer_adapter="trainers.families.flux:FluxAdapter",
    tiny_builder="core.testing.tiny:build_flux",
    memory=MemoryFigures(12.0, 4.7, (
        ("12 GB", "NF4 + offload: model; train NF4 base, checkpointing, 8-bit AdamW, 512-768 px"),
        ("16 GB", "NF4 + offload: model; train NF4 base, checkpointing, 1024 px"),
        ("24 GB", "NF4, or bf16 + offload: model; train NF4 or bf16 + checkpointing"),
        ("40-48 GB", "bf16; train bf16"),
        ("80 GB", "bf16; train bf16"),
    )),
    training_defaults=MappingProxyType(dict(_SEED_TRAINING)),
    sample_prompts=(
        "portrait photo of [trigger], looking at the camera, soft window light",
        "photo of [trigger] smiling, three-quarter view, outdoors",
        "full body photo of [trigger] standing in a city street",
    ),
))

QWEN_EDIT_2509 = register(ModelFamily(
    name="qwen-edit",
    aliases=("qwen-edit-2509",),
    title="Qwen-Image-Edit-2509",
    role=EDITOR,
    hub_id="Qwen/Qwen-Image-Edit-2509",
    pipeline_class="QwenImageEditPlusPipeline",
    transformer_class="QwenImageTransformer2DModel",
    text_encoders=("text_encoder",),
    quantizable_text_encoders=("text_encoder",),
    comfy_folders=(("transformer", "diffusion_models"),),
    lora=LoraLayout("models/qwen_lora", "{version}", "qwen_char_lora_{version}", "qwen_lora"),
    trainer_adapter="trainers.families.qwen_edit:QwenEditAdapter",
    tiny_builder="core.testing.tiny:build_qwen_edit",
    memory=MemoryFigures(20.4, 8.3, (
        ("12 GB", "NF4 + NF4 text encoder + offload: sequential (slow)"),
        ("16 GB", "NF4 + NF4 text encoder + offload: model"),
        ("24 GB", "NF4 transformer + offload: model; train NF4 base (QLoRA)"),
        ("40-48 GB", "bf16 + offload: model; train NF4"),
        ("80 GB", "bf16; train bf16"),
    )),
    training_defaults=MappingProxyType({**_SEED_TRAINING, "max_train_steps": 1000, "caption_dropout": 0.0}),
    processor_subfolder="processor",
    ddp_find_unused_parameters=True,
))

FLUX2_KLEIN = register(ModelFamily(
    name="flux2-klein",
    title="FLUX.2 [klein]",
    role=CHARACTER,
    hub_id="black-forest-labs/FLUX.2-klein-base-4B",
    pipeline_class="Flux2KleinPipeline",
    transformer_class="Flux2Transformer2DModel",
    text_encoders=("text_encoder",),
    quantizable_text_encoders=("text_encoder",),
    comfy_folders=(("transformer", "diffusion_models"),),
    #: the character LoRA's place in a project is the role's, whichever base trained it; the file's
    #: header (``flenwheel.trainer``) names the family
    lora=FLUX1_DEV.lora,
    trainer_adapter="trainers.families.flux2_klein:Flux2KleinAdapter",
    tiny_builder="core.testing.tiny_bases:build_flux2_klein",
    memory=MemoryFigures(3.9, 4.0, (
        ("8 GB", "4B: NF4 + NF4 text encoder; train NF4 base, checkpointing, 8-bit AdamW, 512-768 px"),
        ("12 GB", "4B: bf16 + offload: model; 9B: NF4 + NF4 text encoder; train 4B NF4 at 1024 px"),
        ("16 GB", "4B: bf16 + offload: model; 9B: NF4 + offload: model; train 4B bf16 + checkpointing"),
        ("24 GB", "4B: bf16; 9B: bf16 + offload: model; train 9B NF4, or bf16 + checkpointing (tight)"),
        ("40-48 GB", "bf16; train bf16"),
        ("80 GB", "bf16; train bf16"),
    )),
    training_defaults=MappingProxyType({**_SEED_TRAINING, "sample_guidance_scale": 4.0}),
    sample_prompts=FLUX1_DEV.sample_prompts,
    # ComfyUI runs klein from 0.9.2; its key map covers the single blocks from 0.10.0 and ff.linear_* from 0.11.0
    comfy_lora_since="0.11.0",
))

QWEN_EDIT_2511 = register(ModelFamily(
    name="qwen-edit-2511",
    title="Qwen-Image-Edit-2511",
    role=EDITOR,
    hub_id="Qwen/Qwen-Image-Edit-2511",
    pipeline_class=QWEN_EDIT_2509.pipeline_class,
    transformer_class=QWEN_EDIT_2509.transformer_class,
    text_encoders=QWEN_EDIT_2509.text_encoders,
    quantizable_text_encoders=QWEN_EDIT_2509.quantizable_text_encoders,
    comfy_folders=QWEN_EDIT_2509.comfy_folders,
    lora=QWEN_EDIT_2509.lora,
    #: 2509's adapter: the transformer applies ``zero_cond_t`` from its own config
    trainer_adapter=QWEN_EDIT_2509.trainer_adapter,
    tiny_builder="core.testing.tiny_bases:build_qwen_edit_2511",
    memory=QWEN_EDIT_2509.memory,
    training_defaults=QWEN_EDIT_2509.training_defaults,
    processor_subfolder=QWEN_EDIT_2509.processor_subfolder,
    ddp_find_unused_parameters=True,
))


def family(name: str) -> ModelFamily:
    """The family a name or alias stands for; an unknown name fails listing the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownFamilyError(
            f"unknown model family '{name}'; known families: {', '.join(family_names())}"
        ) from None


def families(role: Role | None = None) -> tuple[ModelFamily, ...]:
    """Every registered family once, in registration order, optionally only those of one role."""
    if role is not None and role not in ROLES:
        raise UnknownFamilyError(f"unknown role '{role}'; use one of {', '.join(ROLES)}")
    unique = {entry.name: entry for entry in _REGISTRY.values()}
    return tuple(entry for entry in unique.values() if role is None or entry.role == role)


def family_names(role: Role | None = None) -> tuple[str, ...]:
    """The canonical names (no aliases): the choices of commands and widgets."""
    return tuple(entry.name for entry in families(role))


def accepted_names(role: Role | None = None) -> tuple[str, ...]:
    """Canonical names and aliases: everything ``family`` resolves."""
    return tuple(name for entry in families(role) for name in entry.names())


def default_family(role: Role) -> ModelFamily:
    """The first family registered for a role: what a project uses unless told otherwise."""
    found = families(role)
    if not found:
        raise UnknownFamilyError(f"no model family is registered for the role '{role}'")
    return found[0]


def resolve(dotted: str) -> Any:
    """Import ``module:attribute`` relative to the pack (works whatever name the pack is imported as)."""
    import importlib

    module, _, attribute = dotted.partition(":")
    pack = __package__.rsplit(".", 2)[0]
    return getattr(importlib.import_module(f"{pack}.{module}"), attribute)
