"""Loading FLUX and Qwen-Image-Edit-2509 pipelines: one loader for real weights and tiny test models.

A pipeline is loaded once and handed around as a ``PipelineHandle`` (the loader node's output),
so ComfyUI's cache keeps the model in memory across runs. Tiny models and FLUX.1-dev go through
the same ``from_pretrained`` call; only the folder differs.

Qwen-Image-Edit-2509 resizes every input image to about 1024x1024 for the VAE and 384x384 for the
vision encoder, whatever output size is asked (module constants in diffusers). ``qwen_edit_sizes``
makes both configurable per call without editing diffusers: at 64 px a tiny edit takes 0.1 s
instead of 13 s, and on a real model smaller condition sizes trade detail for memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.availability import require
from ..data.errors import ModelLoadError
from .device_memory import check_fp8_device, group_offload, store_fp8
from .missing import missing_model_error
from .registry import family

DTYPES = ("bf16", "fp16", "fp32")
#: bitsandbytes modes, for the transformer and the big text encoder
QUANTIZATIONS = ("none", "nf4", "int8")
#: the transformer may also keep fp8 weights and compute in ``dtype`` (``device_memory.store_fp8``)
FP8 = "fp8"
TRANSFORMER_QUANTIZATIONS = (*QUANTIZATIONS, FP8)
#: ``group``: block-level offload with CUDA streams (``device_memory.group_offload``)
GROUP = "group"
OFFLOADS = ("none", "model", "sequential", GROUP)
#: The allowed values of each ``LoadOptions`` field with a fixed set: the CLI memory options, the
#: loader nodes' widgets and the turn config read their choices from here, their defaults from
#: ``LoadOptions`` itself.
MEMORY_CHOICES: dict[str, tuple[str, ...]] = {
    "dtype": DTYPES, "quantize": TRANSFORMER_QUANTIZATIONS, "quantize_text_encoder": QUANTIZATIONS,
    "offload": OFFLOADS,
}
if TYPE_CHECKING:
    from .loras import LoraSpec

_EDIT_PLUS_MODULE = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus"
_sizes_lock = threading.RLock()


@dataclass(frozen=True)
class LoadOptions:
    """Memory options users pick per card size (see docs): precision, quantisation, offload, tiling.

    ``quantize`` applies to the transformer, ``quantize_text_encoder`` to the big text encoder
    (T5-XXL for FLUX, Qwen2.5-VL for Qwen-Image-Edit). 4-bit NF4 and 8-bit need bitsandbytes and
    an NVIDIA GPU; ``fp8`` stores the transformer's weights in float8 and computes in ``dtype`` (half
    of bf16's memory, close to its images, any CUDA GPU or the CPU). ``offload="model"`` keeps one
    component on the GPU at a time (about half the VRAM, a little slower); ``"group"`` brings one
    block at a time, copying the next on a CUDA stream (far less VRAM, nearly as fast);
    ``"sequential"`` streams single layers (lowest VRAM, much slower).
    """

    dtype: str = "bf16"
    device: str | None = None
    quantize: str = "none"
    quantize_text_encoder: str = "none"
    offload: str = "none"
    vae_tiling: bool = False

    def validate(self) -> None:
        for name, allowed in MEMORY_CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ModelLoadError(f"unknown {name} '{value}'; use one of {', '.join(allowed)}")
        if self.quantize == FP8 and self.offload == "sequential":
            raise ModelLoadError("quantize=fp8 does not combine with offload=sequential (both rewrite every layer's "
                                 "weights as it runs); use offload=group or offload=model with fp8")

    def after_transformer_file(self) -> LoadOptions:
        """The options for the rest of a pipeline whose transformer came from a single file:
        bitsandbytes quantised it as it loaded, fp8 storage comes with the pipeline's memory options."""
        return dataclasses.replace(self, quantize=FP8 if self.quantize == FP8 else "none")

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


@dataclass
class PipelineHandle:
    """A loaded pipeline plus what it was loaded from, so records can name the model exactly.

    ``lora_specs`` are the LoRAs this handle asks for. Several handles may share one pipeline (a
    loader node's output and the LoRA nodes branching from it), so engines apply a handle's specs
    with ``loras.set_loras`` right before they generate instead of trusting what is active.
    """

    kind: str
    pipe: Any
    source: str
    dtype: str
    device: str
    loras: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    lora_specs: tuple[LoraSpec, ...] = ()

    def describe(self) -> str:
        return f"{self.kind} from {self.source} ({self.dtype} on {self.device})"

    def with_loras(self, specs: list[LoraSpec] | tuple[LoraSpec, ...]) -> PipelineHandle:
        """A handle on the same pipeline (nothing reloaded) that asks for ``specs``."""
        return dataclasses.replace(self, lora_specs=tuple(specs), loras=[])


def prompt_kwargs(pipe: Any, prompts: list[str]) -> dict[str, list[str]]:
    """``prompt`` (and ``prompt_2``) arguments that each of the pipeline's text encoders reads whole.

    FLUX reads a prompt twice: CLIP-L takes 77 tokens, T5 512. Given a longer prompt, transformers
    warns on every call ("Token indices sequence length is longer than ...") and diffusers cuts it
    to the same 77 tokens anyway. So CLIP gets the prompt cut to what it reads and T5 (``prompt_2``)
    the whole prompt: the same embeddings, and a quiet console.
    """
    tokenizer = getattr(pipe, "tokenizer", None)
    if getattr(pipe, "tokenizer_2", None) is None or "CLIP" not in type(tokenizer).__name__:
        return {"prompt": list(prompts)}
    return {"prompt": [clip_prompt(tokenizer, text) for text in prompts], "prompt_2": list(prompts)}


def clip_prompt(tokenizer: Any, text: str) -> str:
    """``text`` cut to the words CLIP's tokenizer keeps (``model_max_length`` tokens with BOS/EOS)."""
    limit = tokenizer.model_max_length

    def length(candidate: str) -> int:
        return len(tokenizer(candidate, truncation=True, max_length=limit + 1).input_ids)

    if length(text) <= limit:
        return text
    kept = tokenizer(text, truncation=True, max_length=limit).input_ids
    cut = tokenizer.decode(kept, skip_special_tokens=True).strip()
    while cut and length(cut) > limit:
        cut = cut.rsplit(" ", 1)[0] if " " in cut else ""
    return cut


def torch_dtype(name: str) -> Any:
    """``bf16`` / ``fp16`` / ``fp32`` to a torch dtype, with a clear error otherwise."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if name not in table:
        raise ModelLoadError(f"unknown dtype '{name}'; use one of {', '.join(DTYPES)}")
    return table[name]


def dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """diffusers >= 0.42 names the argument ``dtype`` (``torch_dtype`` warns); older releases need ``torch_dtype``."""
    import diffusers
    from packaging.version import Version

    return {"dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype": dtype}


def default_device() -> str:
    """ComfyUI's choice of device inside ComfyUI; outside it, CUDA when present, else CPU."""
    try:
        import comfy.model_management as model_management
    except ImportError:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(model_management.get_torch_device())


def looks_like_path(source: str) -> bool:
    """A hub id is ``org/name``; anything that exists, is absolute or starts with ``.``/``~`` is a path."""
    return (
        os.path.isabs(source)
        or source.startswith((".", "~"))
        or os.path.exists(source)
        or source.count("/") != 1
        or "\\" in source
    )


#: A Hugging Face repo id: ``org/name`` of letters, digits, ``-``, ``_`` and ``.`` (huggingface_hub's own rule).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")


def hub_id_or_refusal(source: str, kind: str) -> str:
    """``org/name`` that is no local path: a hub id, unless it reads as a relative folder that is not there.

    ``models/FLUX.1-dev`` with a ``models`` folder beside it is a folder the user meant (and mistyped,
    or has not downloaded yet); sending it to the hub would fail later with a confusing 404.
    """
    first = source.split("/", 1)[0]
    if Path(first).is_dir():
        raise ModelLoadError(f"{kind} model folder {Path(source).resolve()} does not exist (./{first} does); "
                             f"check the name, or give a hub id like {family(kind).hub_id}")
    if not _HUB_ID.match(source) or ".." in source or "--" in source:
        raise ModelLoadError(f"'{source}' is neither an existing {kind} model folder nor a hub id "
                             f"(org/name, e.g. {family(kind).hub_id})")
    return source


def check_source(source: str, kind: str) -> str:
    """Resolve a local folder (or keep a hub id), failing with a message that names what is missing."""
    if not source:
        raise ModelLoadError(f"no {kind} model given; pass a diffusers folder or a hub id like {family(kind).hub_id}")
    if not looks_like_path(source):
        return hub_id_or_refusal(source, kind)
    folder = Path(source).expanduser()
    if not folder.exists():
        raise ModelLoadError(f"{kind} model folder {folder} does not exist")
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"{folder} is not a diffusers pipeline folder (no model_index.json); for single-file checkpoints "
            "use the single-file loader options"
        )
    return str(folder.resolve())


def _pipeline_class(kind: str) -> Any:
    """The diffusers pipeline class the family's registry entry names."""
    import diffusers

    return getattr(diffusers, family(kind).pipeline_class)


def quantization_config(kind: str, options: LoadOptions, device: str) -> Any | None:
    """A diffusers PipelineQuantizationConfig for the chosen bitsandbytes modes, or None.

    Fails before any weight is read when it cannot work: no bitsandbytes, or no CUDA device
    (bitsandbytes quantises on the GPU; on a CPU it would fail halfway through loading).
    """
    if options.quantize == FP8:
        check_fp8_device(device)
    bnb = options.quantize if options.quantize in QUANTIZATIONS else "none"
    if bnb == "none" and options.quantize_text_encoder == "none":
        return None
    if not str(device).startswith("cuda"):
        chosen = [f"{name}={value}" for name, value in (("quantize", bnb),
                  ("quantize_text_encoder", options.quantize_text_encoder)) if value != "none"]
        raise ModelLoadError(
            f"{bnb if bnb != 'none' else options.quantize_text_encoder} quantisation "
            f"needs an NVIDIA GPU, but the device is {device}. On this machine pick the memory options "
            f"quantize=none and quantize_text_encoder=none (bf16; now {', '.join(chosen)}) with offload=model"
        )
    require("bitsandbytes", "4-bit/8-bit loading")
    from diffusers import BitsAndBytesConfig as DiffusersBnb
    from diffusers import PipelineQuantizationConfig
    from transformers import BitsAndBytesConfig as TransformersBnb

    compute = torch_dtype(options.dtype)

    def settings(mode: str) -> dict[str, Any]:
        """NF4 computes in the chosen dtype: bf16 on a card without it (fp16 only) is slow or fails."""
        if mode == "nf4":
            return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": compute}
        return {"load_in_8bit": True}

    mapping: dict[str, Any] = {}
    if bnb != "none":
        mapping["transformer"] = DiffusersBnb(**settings(options.quantize))
    if options.quantize_text_encoder != "none":
        for name in family(kind).quantizable_text_encoders:
            mapping[name] = TransformersBnb(**settings(options.quantize_text_encoder))
    return PipelineQuantizationConfig(quant_mapping=mapping)


def check_offload_device(options: LoadOptions, device: str) -> None:
    """What the device cannot do, before any weight is read: fp8 where there are no float8 tensors,
    offload to the CPU without a GPU to offload from. Group offload alone also runs on the CPU
    (between CPU and CPU: the same images, nothing saved), which is how its hooks are tested here."""
    if options.quantize == FP8:
        check_fp8_device(device)
    if options.offload not in ("none", GROUP) and not str(device).startswith("cuda"):
        raise ModelLoadError(f"offload={options.offload} needs a CUDA GPU; the device is {device}: use offload=none "
                             "(or offload=group, which runs but saves nothing off a GPU)")


def apply_memory_options(pipe: Any, options: LoadOptions, device: str) -> None:
    """fp8 storage first (on the CPU, so bf16 weights never reach the GPU), then move to the device,
    or set up offload instead (offload manages placement itself).

    diffusers' ``Pipeline.to`` knows bitsandbytes modules (8-bit ones stay where they were loaded).
    """
    check_offload_device(options, device)
    if options.quantize == FP8:
        store_fp8(pipe.transformer, torch_dtype(options.dtype))
    if options.offload == GROUP:
        group_offload(pipe, device)
    elif options.offload != "none":
        if options.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if options.vae_tiling:
        pipe.vae.enable_tiling()


def load_pipeline(kind: str, source: str, dtype: str = "bf16", device: str | None = None,
                  options: LoadOptions | None = None, components: dict[str, Any] | None = None) -> PipelineHandle:
    """Load a diffusers pipeline folder or hub id with the chosen memory options.

    ``components`` replaces parts of the pipeline with models already loaded (e.g. a transformer
    read from a ComfyUI single-file checkpoint); the folder or hub id supplies everything else.
    """
    options = options or LoadOptions(dtype=dtype, device=device)
    options.validate()
    target = options.device or default_device()
    check_offload_device(options, target)
    resolved = check_source(source, kind)
    extra: dict[str, Any] = dict(components or {})
    quant = quantization_config(kind, options, target)
    if quant is not None:
        extra["quantization_config"] = quant
    subfolder = family(kind).processor_subfolder
    if subfolder and looks_like_path(resolved) and "processor" not in extra:
        from .qwen_processor import load_processor

        extra["processor"] = load_processor(Path(resolved) / subfolder)
    try:
        pipe = _pipeline_class(kind).from_pretrained(resolved, **dtype_kwarg(torch_dtype(options.dtype)), **extra)
    except (OSError, ValueError) as exc:
        raise missing_model_error(f"the {kind} model", resolved, exc, looks_like_path(resolved)) from None
    apply_memory_options(pipe, options, target)
    pipe.set_progress_bar_config(disable=True)
    return PipelineHandle(kind=kind, pipe=pipe, source=resolved, dtype=options.dtype, device=target,
                          options=options.to_json())


@contextlib.contextmanager
def qwen_edit_sizes(vae_pixels: int | None = None, condition_pixels: int | None = None) -> Iterator[None]:
    """Run Qwen-Image-Edit-2509 with other input-image areas (pixels) than diffusers' 1024² / 384².

    The pipeline reads these module constants at call time; they are set for the duration of the
    block under a lock, so concurrent edits never see each other's sizes.
    """
    import importlib

    module = importlib.import_module(_EDIT_PLUS_MODULE)
    with _sizes_lock:
        saved = (module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE)
        module.VAE_IMAGE_SIZE = vae_pixels or saved[0]
        module.CONDITION_IMAGE_SIZE = condition_pixels or saved[1]
        try:
            yield
        finally:
            module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE = saved
