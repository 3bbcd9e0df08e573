"""Model families as data: one frozen record per base model, read by every place that needs one.

What a base model is - its role in the flywheel, its diffusers classes, where ComfyUI keeps its
files, how its LoRAs are named, how it trains - is written here once. The trainer config, the
loaders, the CLI choices, the node widgets, planning and the turn ask this module instead of
spelling a family name, so adding a base model is one entry here, one trainer adapter
(``trainers/families/``), one tiny-model builder and their tests (docs/adding-a-base-model.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from ..data.errors import FlenwheelError
from ..data.project import inside, parse_version

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
        """The run folder of ``version`` (``vN``, checked: it comes from widgets and options) under ``root``."""
        parse_version(version)
        return inside(root / self.folder, self.version_dir.format(version=version), within=root)

    def file_name(self, version: str) -> str:
        return f"{self.file_stem.format(version=version)}.safetensors"

    def version_number(self, folder_name: str) -> int | None:
        """``2`` for the folder name of version ``v2`` (``char_v2`` for FLUX.1), else None."""
        prefix, _, suffix = self.version_dir.partition("{version}")
        match = re.fullmatch(f"{re.escape(prefix)}v([1-9][0-9]*){re.escape(suffix)}", folder_name)
        return int(match.group(1)) if match else None


#: The cards (GB of GPU memory) that have a memory preset: ``flenwheel init --gpu N`` and the README's table.
GPU_CARDS: tuple[int, ...] = (12, 16, 24, 48, 80)
#: Where ``benchmarks/gpu_check.py --record`` writes measured figures; a preset row without them is an estimate.
MEASURED_FILE = Path(__file__).with_name("memory_measured.json")


@dataclass(frozen=True)
class LoadPreset:
    """The memory options of the in-process stages (enrichment, generation, the model card) for one family.

    Field names and values are those of ``LoadOptions`` (the turn config's ``models.*``).
    """

    quantize: str = "none"
    quantize_text_encoder: str = "none"
    offload: str = "none"
    vae_tiling: bool = False

    def options(self) -> dict[str, Any]:
        return {"quantize": self.quantize, "quantize_text_encoder": self.quantize_text_encoder,
                "offload": self.offload, "vae_tiling": self.vae_tiling}


@dataclass(frozen=True)
class TrainPreset:
    """The trainer config keys that decide a LoRA run's memory (``train.overrides`` / ``editor.overrides``)."""

    quantize: str = "none"
    optimizer: str = "adamw"
    resolution: int = 1024
    lora_rank: int = 16
    gradient_checkpointing: bool = True
    batch_size: int = 1
    blocks_to_swap: int = 0

    def options(self) -> dict[str, Any]:
        return {"quantize": self.quantize, "optimizer": self.optimizer, "resolution": self.resolution,
                "lora_rank": self.lora_rank, "gradient_checkpointing": self.gradient_checkpointing,
                "batch_size": self.batch_size, "blocks_to_swap": self.blocks_to_swap}


@dataclass(frozen=True)
class CardPreset:
    """One row of a family's memory table: what to load and train with on a card of ``gpu_gb`` GB.

    ``train`` is None where no LoRA training of this family fits the card with the options the
    trainer has. Rows that stream weights use fp8 storage with ``offload: group`` (inference) or
    ``blocks_to_swap`` (training); bitsandbytes' NF4 is kept apart from both, since 4-bit weights
    are not moved block by block.
    """

    gpu_gb: int
    load: LoadPreset
    train: TrainPreset | None


@dataclass(frozen=True)
class MemoryFigures:
    """Sizes behind the README's memory table (worked out from weights) and the family's presets per card.

    ``presets`` has one row per card of ``GPU_CARDS``, the values estimated from the weight sizes
    (parameter counts x bytes per weight, activations on top) until ``benchmarks/gpu_check.py``
    measures them (``MEASURED_FILE``).
    """

    transformer_params_b: float
    text_encoder_params_b: float
    presets: tuple[CardPreset, ...] = ()

    def row(self) -> str:
        """One line: parameter counts and the transformer's weight size in bf16, fp8 and NF4."""
        bf16 = self.transformer_params_b * 2
        nf4 = self.transformer_params_b * 0.5
        return (f"{self.transformer_params_b:g} B transformer, {self.text_encoder_params_b:g} B text encoder; "
                f"transformer weights ~{bf16:.0f} GB bf16, ~{self.transformer_params_b:.0f} GB fp8, ~{nf4:.0f} GB NF4")

    def weights_on_gpu(self, bytes_per_weight: float, swapped: int = 0, blocks: int = 0) -> float:
        """GB of transformer weights the GPU holds (an estimate: the blocks carry nearly all weights,
        taken as equal in size): ``swapped`` of the ``blocks`` blocks wait in CPU memory."""
        share = 1.0 - swapped / blocks if blocks else 1.0
        return self.transformer_params_b * bytes_per_weight * share

    def preset(self, gpu_gb: int) -> CardPreset:
        """The row for a card; a card without one is a user error naming the cards that have one."""
        for preset in self.presets:
            if preset.gpu_gb == gpu_gb:
                return preset
        raise FlenwheelError(f"no memory preset for a {gpu_gb} GB card; use one of "
                             f"{', '.join(str(p.gpu_gb) for p in self.presets)}")


#: fp8 weights streamed block by block: the in-process stages of cards too small for the weights
_FP8_STREAMED = LoadPreset(quantize="fp8", offload="group")
_QLORA = TrainPreset(quantize="nf4", optimizer="adamw8bit")
#: fp8 frozen base with blocks swapped to the CPU (musubi-tuner's recipe for small cards)
_FP8_SWAP = TrainPreset(quantize="fp8", optimizer="adamw8bit")


@dataclass(frozen=True)
class TransformerFile:
    """How a family's transformer single file (ComfyUI's ``diffusion_models``) is recognised.

    diffusers' ``from_single_file`` converts the layout; this says which file is one: ``marker`` is a
    key only that layout has (after ComfyUI's ``model.diffusion_model.`` prefix), ``diffusers_marker``
    a key of the diffusers layout (such a file is refused with "load its folder instead"), ``layout``
    the layout's name for messages.
    """

    marker: str
    diffusers_marker: str
    layout: str


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
    #: the transformer's blocks (all of them, double and single), and the most a trainer may keep on
    #: the CPU (``blocks_to_swap``) as the peers allow for this base (musubi-tuner's figures, or its
    #: rule of all blocks but two)
    transformer_blocks: int = 0
    max_blocks_to_swap: int = 0
    aliases: tuple[str, ...] = ()
    #: aliases that also name another checkpoint of the same architecture to generate with (a distilled
    #: Turbo beside the Base it was distilled from): (alias, hub id) pairs; training keeps ``hub_id``
    alias_hub_ids: tuple[tuple[str, str], ...] = ()
    #: the transformer's single-file layout, for families other than FLUX.1 (which reads every part)
    transformer_file: TransformerFile | None = None
    #: the first ComfyUI release whose own LoraLoader maps every key of this family's LoRA files
    #: (None: every supported ComfyUI does); measured with tests/trainers/comfy_lora_check.py
    comfy_lora_since: str | None = None

    @property
    def trains_on_triplets(self) -> bool:
        """Editors learn from (source, edit prompt, target) triplets; character bases from images."""
        return self.role == EDITOR

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def hub_id_for(self, name: str) -> str:
        """The hub id ``name`` (this family's name or an alias) generates with by default."""
        return dict(self.alias_hub_ids).get(name, self.hub_id)

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
        CardPreset(12, _FP8_STREAMED, replace(_FP8_SWAP, resolution=768, blocks_to_swap=30)),
        CardPreset(16, _FP8_STREAMED, _QLORA),
        CardPreset(24, LoadPreset(quantize="fp8", offload="model"), TrainPreset(quantize="fp8")),
        CardPreset(48, LoadPreset(), TrainPreset()),
        CardPreset(80, LoadPreset(), TrainPreset()),
    )),
    training_defaults=MappingProxyType(dict(_SEED_TRAINING)),
    transformer_blocks=57,  # 19 double + 38 single
    max_blocks_to_swap=55,
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
        CardPreset(12, replace(_FP8_STREAMED, vae_tiling=True), replace(_FP8_SWAP, resolution=768, blocks_to_swap=45)),
        CardPreset(16, _FP8_STREAMED, replace(_FP8_SWAP, resolution=768, blocks_to_swap=30)),
        CardPreset(24, _FP8_STREAMED, replace(_FP8_SWAP, blocks_to_swap=16)),
        CardPreset(48, LoadPreset(offload="model"), TrainPreset(quantize="fp8")),
        CardPreset(80, LoadPreset(), TrainPreset()),
    )),
    training_defaults=MappingProxyType({**_SEED_TRAINING, "max_train_steps": 1000, "caption_dropout": 0.0}),
    processor_subfolder="processor",
    ddp_find_unused_parameters=True,
    transformer_blocks=60,
    max_blocks_to_swap=58,  # musubi-tuner's limit for Qwen-Image
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
    transformer_file=TransformerFile("single_stream_modulation.lin.weight",
                                     "single_transformer_blocks.0.attn.to_qkv_mlp_proj.weight", "BFL"),
    #: the character LoRA's place in a project is the role's, whichever base trained it; the file's
    #: header (``flenwheel.trainer``) names the family
    lora=FLUX1_DEV.lora,
    trainer_adapter="trainers.families.flux2_klein:Flux2KleinAdapter",
    tiny_builder="core.testing.tiny_bases:build_flux2_klein",
    memory=MemoryFigures(3.9, 4.0, (
        CardPreset(12, LoadPreset(offload="model"), TrainPreset(quantize="fp8")),
        CardPreset(16, LoadPreset(offload="model"), TrainPreset()),
        CardPreset(24, LoadPreset(), TrainPreset()),
        CardPreset(48, LoadPreset(), TrainPreset()),
        CardPreset(80, LoadPreset(), TrainPreset()),
    )),
    training_defaults=MappingProxyType({**_SEED_TRAINING, "sample_guidance_scale": 4.0}),
    transformer_blocks=25,  # 5 double + 20 single (9B: 8 + 24)
    max_blocks_to_swap=13,  # musubi-tuner's figure for klein 4B; 16 for 9B
    sample_prompts=FLUX1_DEV.sample_prompts,
    # ComfyUI runs klein from 0.9.2; its key map covers the single blocks from 0.10.0 and ff.linear_* from 0.11.0
    comfy_lora_since="0.11.0",
))

Z_IMAGE = register(ModelFamily(
    name="z-image",
    aliases=("z-image-base", "z-image-turbo"),
    title="Z-Image",
    role=CHARACTER,
    #: LoRAs train on the undistilled Base; the 8-step Turbo generates with them (``z-image-turbo``)
    hub_id="Tongyi-MAI/Z-Image",
    alias_hub_ids=(("z-image-turbo", "Tongyi-MAI/Z-Image-Turbo"),),
    pipeline_class="ZImagePipeline",
    transformer_class="ZImageTransformer2DModel",
    text_encoders=("text_encoder",),
    quantizable_text_encoders=("text_encoder",),
    comfy_folders=(("transformer", "diffusion_models"),),
    transformer_file=TransformerFile("layers.0.attention.qkv.weight", "all_x_embedder.2-1.weight", "ComfyUI"),
    lora=FLUX1_DEV.lora,
    trainer_adapter="trainers.families.z_image:ZImageAdapter",
    tiny_builder="core.testing.tiny_bases:build_z_image",
    memory=MemoryFigures(6.15, 4.0, (
        CardPreset(12, LoadPreset(quantize="fp8", offload="model"), replace(_FP8_SWAP, blocks_to_swap=10)),
        CardPreset(16, LoadPreset(quantize="fp8", offload="model"), TrainPreset(quantize="fp8")),
        CardPreset(24, LoadPreset(offload="model"), TrainPreset()),
        CardPreset(48, LoadPreset(), TrainPreset()),
        CardPreset(80, LoadPreset(), TrainPreset()),
    )),
    training_defaults=MappingProxyType({**_SEED_TRAINING, "sample_guidance_scale": 4.0, "sample_steps": 28}),
    transformer_blocks=34,  # 30 main layers + 2 noise-refiner + 2 context-refiner blocks
    max_blocks_to_swap=28,  # the main layers but two, the peers' rule
    sample_prompts=FLUX1_DEV.sample_prompts,
    # the oldest ComfyUI measured to map every key (0.12.1; 0.3.64 has no Z-Image model at all)
    comfy_lora_since="0.12.1",
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
    transformer_blocks=QWEN_EDIT_2509.transformer_blocks,
    max_blocks_to_swap=QWEN_EDIT_2509.max_blocks_to_swap,
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


def measured_figure(family_name: str, stage: str, options: dict[str, Any]) -> dict[str, Any] | None:
    """What ``benchmarks/gpu_check.py --record`` measured for a family's ``load`` or ``train`` options, if anything.

    A figure is ``{family, stage, options, peak_gib, seconds, unit, device}``; it belongs to a preset
    row when its options equal the row's exactly, so a changed row is an estimate again.
    """
    if not MEASURED_FILE.is_file():
        return None
    figures = json.loads(MEASURED_FILE.read_text(encoding="utf-8")).get("figures", [])
    return next((f for f in figures if f.get("family") == family_name and f.get("stage") == stage
                 and f.get("options") == options), None)


def resolve(dotted: str) -> Any:
    """Import ``module:attribute`` relative to the pack (works whatever name the pack is imported as)."""
    import importlib

    module, _, attribute = dotted.partition(":")
    pack = __package__.rsplit(".", 2)[0]
    return getattr(importlib.import_module(f"{pack}.{module}"), attribute)
