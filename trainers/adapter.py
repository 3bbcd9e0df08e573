"""The per-model hooks of the shared training loop, and what both models have in common.

``loop.Trainer`` owns everything that must be identical across models - data order, caching,
optimiser, checkpoints, signals, protocol. A ``ModelAdapter`` owns what differs: how the model is
loaded, how an item becomes latents and text embeddings, the forward pass and loss, and sampling
(the shape of musubi-tuner's NetworkTrainer). Adding a base model means one new adapter.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..core.data.availability import require
from ..core.data.errors import FlenwheelError, ModelLoadError
from ..core.data.images import load_image
from ..core.models.device_memory import check_fp8_device, free_memory, store_fp8
from ..core.models.pipelines import check_source, dtype_kwarg
from .block_swap import BlockSwap, check_blocks_to_swap, transformer_blocks

if TYPE_CHECKING:
    from PIL import Image

    from ..core.models.registry import ModelFamily
    from .config import SampleSpec, TrainConfig
    from .datasets import TrainItem

Tensors = dict[str, torch.Tensor]

#: The linear layers of diffusers' joint (image + text stream) attention, which every family's
#: transformer blocks share; each adapter adds its own MLP layer names.
JOINT_ATTENTION_TARGETS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
)


@dataclass
class Example:
    """One item of a batch, ready for the forward pass (tensors already on the training device)."""

    images: Tensors
    text: Tensors
    size: tuple[int, int]


@dataclass
class PreparedSample:
    """A sample prompt encoded while the text encoders were still loaded."""

    spec: SampleSpec
    text: Tensors
    controls: list[Image.Image] = field(default_factory=list)


class ModelAdapter(ABC):
    """Hooks the loop calls; subclasses fill them in for one base model."""

    containers: tuple[str, ...] = ()
    #: the transformer config's counts of the blocks in ``containers`` (a key counted twice counts twice)
    block_config_keys: tuple[str, ...] = ("num_layers", "num_single_layers")
    default_targets: tuple[str, ...] = ()
    #: write ``.alpha`` tensors into the LoRA file (see ``lora_io``)
    alpha_keys = True

    def __init__(self, config: TrainConfig, device: torch.device, weight_dtype: torch.dtype) -> None:
        self.config = config
        self.device = device
        self.weight_dtype = weight_dtype
        self.pipe: Any = None
        self.family: ModelFamily = config.model_family

    # Loading: the diffusers classes and text encoders come from the family's registry entry ------
    @property
    def kind(self) -> str:
        return self.family.name

    @property
    def text_encoders(self) -> tuple[str, ...]:
        return self.family.text_encoders

    def pipeline_extra(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` arguments for the pipeline (e.g. a processor)."""
        return {}

    def load_encoders(self, text: bool = True) -> None:
        """The pipeline without its transformer: VAE, text encoders, tokenizers, scheduler.

        The transformer comes later (``load_transformer``), after the text encoders have done their
        work and left: T5-XXL or Qwen2.5-VL and the transformer are never in memory together. With
        ``text=False`` (every embedding is cached on disk) the text encoders are not loaded at all.
        """
        import diffusers

        skipped = {} if text else {name: None for name in self.text_encoders}
        self.pipe = load_pipeline_parts(getattr(diffusers, self.family.pipeline_class), self.config.model, None,
                                        self.weight_dtype, self.kind, **self.pipeline_extra(), **skipped)
        self.pipe.set_progress_bar_config(disable=True)
        for name in ("vae", *(self.text_encoders if text else ())):
            getattr(self.pipe, name).requires_grad_(False).to(self.device)

    def load_transformer(self) -> torch.nn.Module:
        """The transformer the LoRA is trained on, placed in the pipeline (for sampling).

        fp8 storage and block swap are set up after the LoRA is added (``place_transformer``), so
        the transformer stays in CPU memory until then and its bf16 weights never reach the GPU.
        """
        import diffusers

        model_class = getattr(diffusers, self.family.transformer_class)
        if self.config.quantize == "fp8":
            check_fp8_device(self.device)
        if self.config.blocks_to_swap:
            check_blocks_to_swap(self.config.blocks_to_swap, self.block_count(model_class),
                                 self.family.max_blocks_to_swap, self.family.title)
        transformer = load_transformer(model_class, self.config.model, self.weight_dtype,
                                       "nf4" if self.config.quantize == "nf4" else "none", self.kind)
        if self.config.quantize == "none" and not self.config.blocks_to_swap:
            transformer.to(self.device)
        self.pipe.transformer = transformer
        return transformer

    def block_count(self, model_class: Any) -> int:
        """The transformer's blocks, read from its config before any weight is."""
        try:
            config = model_class.load_config(check_source(self.config.model, self.kind), subfolder="transformer")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot read the {self.kind} transformer config from {self.config.model}: {exc}") from None
        return sum(int(config.get(key, 0)) for key in self.block_config_keys)

    def place_transformer(self, transformer: torch.nn.Module) -> BlockSwap | None:
        """fp8 storage under the LoRA (added before, so its own layers keep their precision), then
        the device: whole, or all but the frozen weights of the swapped blocks."""
        if self.config.quantize == "fp8":
            store_fp8(transformer, self.weight_dtype)
        if self.device.type == "cpu":
            own_memory(transformer)
        if not self.config.blocks_to_swap:
            if self.config.quantize != "nf4":  # bitsandbytes placed its weights while loading
                transformer.to(self.device)
            return None
        swap = BlockSwap(transformer_blocks(transformer, self.containers), self.config.blocks_to_swap, self.device)
        swap.install(transformer)
        return swap

    def release_text_encoders(self) -> None:
        """Drop the text encoders once every embedding is cached, so their memory goes to training."""
        for name in self.text_encoders:
            setattr(self.pipe, name, None)
        free_memory()

    def release_vae(self) -> None:
        """Drop the VAE when every latent is cached and no sample will be decoded."""
        self.pipe.vae = None
        free_memory()

    @property
    def pixel_multiple(self) -> int:
        """Image sides must be multiples of this (VAE downscale x 2x2 latent packing)."""
        return int(self.pipe.vae_scale_factor) * 2

    # Encoding ----------------------------------------------------------------------------
    def bucket_key(self, item: TrainItem, size: tuple[int, int]) -> Hashable:
        """Items that may share a batch (same image size; same number of sources for edits)."""
        return size

    @abstractmethod
    def encode_images(self, item: TrainItem, size: tuple[int, int]) -> Tensors:
        """Latents of the item's image (and source images), at the bucket ``size``."""

    def text_key(self, item: TrainItem, caption: str) -> str:
        """Items whose text embedding is the same share one cache entry (content, never paths)."""
        return caption

    @abstractmethod
    def encode_text(self, item: TrainItem, caption: str) -> Tensors:
        """Text-encoder outputs for one caption (the loop caches them)."""

    # Training ----------------------------------------------------------------------------
    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: list[Example], generator: torch.Generator) -> torch.Tensor:
        """The flow-matching loss of one batch; all randomness comes from ``generator``."""

    # Sampling ----------------------------------------------------------------------------
    def default_samples(self, items: list[TrainItem]) -> list[SampleSpec]:
        """Previews to make when the config names none."""
        return []

    def sample_key(self, spec: SampleSpec) -> str:
        """The cache key of a sample's text embedding."""
        return spec.prompt

    @abstractmethod
    def prepare_sample(self, spec: SampleSpec, text: Tensors | None = None) -> PreparedSample:
        """A sample ready to generate: its prompt encoded now (or ``text`` when cached)."""

    @abstractmethod
    def sample(self, prepared: PreparedSample, size: tuple[int, int], seed: int) -> Image.Image:
        """Generate one preview with the LoRA as trained so far."""

    # Shared helpers ----------------------------------------------------------------------
    @torch.no_grad()
    def run_pipe(self, size: tuple[int, int], seed: int, **inputs: Any) -> Image.Image:
        """One preview through the pipeline: the config's step count and a CPU generator per seed, so a
        preview is the same picture on every device."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        result = self.pipe(width=size[0], height=size[1], num_inference_steps=self.config.sample_steps,
                           generator=generator, output_type="pil", **inputs)
        return result.images[0]

    def sigmas(self, count: int, image_tokens: int, generator: torch.Generator) -> torch.Tensor:
        """Flow-matching noise levels in (0, 1).

        ``shift`` (default) draws logit-normal levels and applies the resolution-dependent shift the
        pipeline uses at inference (``mu`` from the image token count), so training spends its steps
        where sampling does; ``sigmoid`` is plain logit-normal, ``uniform`` is uniform.
        """
        mode = self.config.timestep_sampling
        if mode == "uniform":
            sigma = torch.rand(count, generator=generator)
        else:
            sigma = torch.sigmoid(torch.randn(count, generator=generator))
        if mode == "shift":
            sigma = self.shift_sigmas(sigma, image_tokens)
        return sigma.clamp(1e-4, 1.0 - 1e-4)

    def shift_sigmas(self, sigma: torch.Tensor, image_tokens: int) -> torch.Tensor:
        """The pipeline's resolution-dependent shift (``mu`` from the image token count, exponential
        rule); a base whose scheduler shifts another way overrides this."""
        mu = self.shift_mu(image_tokens)
        return math.exp(mu) / (math.exp(mu) + (1.0 / sigma - 1.0))

    def shift_mu(self, image_tokens: int) -> float:
        """The pipeline's resolution-dependent shift ``mu``: FLUX.1's and Qwen-Image's linear rule
        from the scheduler config (``calculate_shift``); a base with another rule overrides this."""
        cfg = self.pipe.scheduler.config
        base_len, max_len = cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096)
        base_shift, max_shift = cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15)
        slope = (max_shift - base_shift) / (max_len - base_len)
        return image_tokens * slope + base_shift - slope * base_len

    def load_image(self, path: Path) -> Image.Image:
        return load_image(path)


def own_memory(model: torch.nn.Module) -> None:
    """Weights in freshly allocated CPU memory rather than views of the memory-mapped file.

    A weight read from a safetensors file sits wherever its bytes fall in the file, and the CPU's
    matrix kernels sum in a different order for an unaligned weight; a GPU always gets a fresh
    copy. With every CPU run computing on its own copies, the memory options (block swap copies
    weights by design) give the very same numbers as the plain path.
    """
    for param in model.parameters():
        param.data = param.data.clone()


def load_transformer(model_class: Any, source: str, dtype: torch.dtype, quantize: str, kind: str) -> Any:
    """The transformer alone, optionally NF4-quantised (QLoRA) through diffusers' bitsandbytes support."""
    extra: dict[str, Any] = {}
    if quantize == "nf4":
        if not torch.cuda.is_available():
            raise FlenwheelError(
                "quantize: nf4 needs an NVIDIA GPU (bitsandbytes 4-bit); on this machine set quantize: none"
            )
        require("bitsandbytes", "quantize: nf4")
        from diffusers import BitsAndBytesConfig

        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
        )
    try:
        return model_class.from_pretrained(
            check_source(source, kind), subfolder="transformer", **dtype_kwarg(dtype), **extra
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the {kind} transformer from {source}: {exc}") from None


def load_pipeline_parts(
    pipeline_class: Any, source: str, transformer: Any, dtype: torch.dtype, kind: str, **extra: Any
) -> Any:
    """The pipeline around an already loaded transformer (or without one: ``transformer=None``)."""
    try:
        return pipeline_class.from_pretrained(
            check_source(source, kind), transformer=transformer, **dtype_kwarg(dtype), **extra
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the {kind} pipeline from {source}: {exc}") from None
