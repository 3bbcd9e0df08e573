"""FLENwheel FLUX loader and LoRA nodes: load the base model once, stack LoRAs without reloading it.

The loader's output is a pipeline handle that ComfyUI caches, so the 12-billion-parameter model
stays in memory across runs. LoRA nodes return a light handle on the same pipeline that only
names its LoRAs; the generating node applies them just before rendering. Changing a LoRA or a
strength therefore re-runs the LoRA node alone, never the loader.
"""

from __future__ import annotations

from ..core.data.availability import missing_note
from ..core.models.character_base import load_character_base
from ..core.models.character_lora import LATEST, resolve_lora
from ..core.models.flux_single_file import COMFY_FOLDERS, FluxFiles
from ..core.models.loras import LoraSpec
from ..core.models.pipelines import LoadOptions
from ..core.models.registry import CHARACTER, FLUX1_DEV, family, family_names
from ._comfy import comfyui_version, model_folder_files, model_folder_path
from ._places import checked_loras, checked_model
from ._types import CATEGORY, FLUX_PIPELINE, PROJECT_INPUT, memory_input

FROM_MODEL = "(from model)"
FLUX_INPUT = (FLUX_PIPELINE, {"tooltip": "FLUX pipeline from FLENwheel Load FLUX (or a LoRA node after it)."})
STRENGTH_INPUT = (
    "FLOAT",
    {
        "default": 1.0,
        "min": -4.0,
        "max": 4.0,
        "step": 0.05,
        "tooltip": "LoRA strength; 0 gives the base model exactly.",
    },
)


def _choices(part: str) -> list[str]:
    return [FROM_MODEL, *model_folder_files(COMFY_FOLDERS[part])]


def _file(part: str, name: str) -> str | None:
    return None if name in ("", FROM_MODEL) else model_folder_path(COMFY_FOLDERS[part], name)


def lora_lookup(name: str) -> str | None:
    """A file of ComfyUI's loras folder by name, or None (also outside ComfyUI)."""
    try:
        return model_folder_path("loras", name)
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _stacked(flux, spec: LoraSpec):
    return flux.with_loras([*flux.lora_specs, spec])


class FlenwheelLoadFlux:
    DESCRIPTION = (
        "Loads FLUX.1 (dev or a fine-tune) for FLENwheel: from a diffusers folder or hub id, or from the "
        "single files in ComfyUI's model folders (transformer in diffusion_models, ae in vae, clip_l and "
        "t5xxl in text_encoders; the folder or hub id then supplies configs, tokenizers and scheduler). "
        "Memory options: bf16, NF4/8-bit (NVIDIA GPU), fp8 weights, CPU or block (group) offload, VAE tiling."
    ) + missing_note("bitsandbytes")
    CATEGORY = f"{CATEGORY}/models"
    RETURN_TYPES = (FLUX_PIPELINE, "STRING")
    RETURN_NAMES = ("flux", "description")
    OUTPUT_TOOLTIPS = ("The loaded pipeline (cached by ComfyUI).", "What was loaded, and how.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (
                    "STRING",
                    {
                        "default": FLUX1_DEV.hub_id,
                        "tooltip": "Diffusers folder or hub id; supplies every part not picked as a file "
                        "below.",
                    },
                ),
                "transformer": (
                    _choices("transformer"),
                    {
                        "default": FROM_MODEL,
                        "tooltip": "Transformer file from diffusion_models/unet (e.g. "
                        "flux1-dev.safetensors, fp8 ok).",
                    },
                ),
                "vae": (
                    _choices("vae"),
                    {"default": FROM_MODEL, "tooltip": "Autoencoder file (ae.safetensors)."},
                ),
                "clip_l": (
                    _choices("clip_l"),
                    {"default": FROM_MODEL, "tooltip": "CLIP-L text encoder file."},
                ),
                "t5xxl": (_choices("t5"), {"default": FROM_MODEL, "tooltip": "T5-XXL text encoder file."}),
                "dtype": memory_input("dtype", "Weight precision (bf16 for FLUX)."),
                "quantize": memory_input(
                    "quantize", "Transformer in 4-bit NF4 or 8-bit (bitsandbytes, NVIDIA GPU): about 7 / 12 GB; "
                    "fp8: weights stored in fp8, computed in dtype (about 12 GB, closer to bf16's images, any GPU)."
                ),
                "quantize_text_encoder": memory_input(
                    "quantize_text_encoder", "T5-XXL in 4-bit or 8-bit (only when T5 comes from the model folder)."
                ),
                "offload": memory_input(
                    "offload", "CPU offload: 'model' roughly halves VRAM; 'group' brings one block at a time on "
                    "CUDA streams (little VRAM, nearly full speed); 'sequential' uses least VRAM, much slower."
                ),
                "vae_tiling": memory_input("vae_tiling", "Decode in tiles to save VRAM."),
                "device": (
                    ["auto", "cuda", "cpu"],
                    {
                        "default": "auto",
                        "tooltip": "auto: ComfyUI's device. CPU works for tiny test models only.",
                    },
                ),
            },
            "optional": {
                "base": (
                    list(family_names(CHARACTER)),
                    {
                        "default": FLUX1_DEV.name,
                        "tooltip": "Character base family (flenwheel models lists them). Newer bases take only "
                        "the transformer as a file; when model is still FLUX.1-dev's hub id, the base's own is used.",
                    },
                ),
            },
        }

    def load(
        self,
        model,
        transformer,
        vae,
        clip_l,
        t5xxl,
        dtype,
        quantize,
        quantize_text_encoder,
        offload,
        vae_tiling,
        device,
        base=FLUX1_DEV.name,
    ):
        files = FluxFiles(
            transformer=_file("transformer", transformer),
            vae=_file("vae", vae),
            clip_l=_file("clip_l", clip_l),
            t5=_file("t5", t5xxl),
        )
        options = LoadOptions(
            dtype=dtype,
            device=None if device == "auto" else device,
            quantize=quantize,
            quantize_text_encoder=quantize_text_encoder,
            offload=offload,
            vae_tiling=vae_tiling,
        )
        source = checked_model(model)
        if base != FLUX1_DEV.name and source in ("", FLUX1_DEV.hub_id):
            source = family(base).hub_id
        handle = load_character_base(base, source, files, options)
        parts = ", ".join(f"{k}={v}" for k, v in files.to_json().items() if v)
        note = family(base).comfy_lora_note(comfyui_version())
        return (handle, handle.describe() + (f"; files: {parts}" if parts else "") + (f"\n{note}" if note else ""))


class FlenwheelCharacterLora:
    DESCRIPTION = (
        "Adds the project's character LoRA (models/flux_lora/char_vN/char_lora_vN.safetensors) at a "
        "strength. "
        "Chain several LoRA nodes to stack LoRAs; the base model is never reloaded."
    )
    CATEGORY = f"{CATEGORY}/models"
    RETURN_TYPES = (FLUX_PIPELINE, "STRING")
    RETURN_NAMES = ("flux", "lora")
    OUTPUT_TOOLTIPS = ("The same pipeline, with this LoRA added to its list.", "The LoRA file used.")
    FUNCTION = "add"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "project": PROJECT_INPUT,
                "version": (
                    "STRING",
                    {
                        "default": LATEST,
                        "tooltip": "Character LoRA version: latest, char_v1, v2... (or a .safetensors path).",
                    },
                ),
                "strength": STRENGTH_INPUT,
            }
        }

    def add(self, flux, project, version, strength):
        path = str(resolve_lora(version.strip() or LATEST, project))
        checked_loras([path])
        return (_stacked(flux, LoraSpec(path, strength)), path)


class FlenwheelFluxLora:
    DESCRIPTION = (
        "Adds a LoRA from ComfyUI's loras folder (a style LoRA, say) at a strength, on top of the LoRAs "
        "already chosen. The base model is never reloaded."
    )
    CATEGORY = f"{CATEGORY}/models"
    RETURN_TYPES = (FLUX_PIPELINE,)
    RETURN_NAMES = ("flux",)
    OUTPUT_TOOLTIPS = ("The same pipeline, with this LoRA added to its list.",)
    FUNCTION = "add"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "lora_name": (
                    model_folder_files("loras"),
                    {"tooltip": "LoRA file from ComfyUI's loras folder."},
                ),
                "strength": STRENGTH_INPUT,
            }
        }

    def add(self, flux, lora_name, strength):
        return (_stacked(flux, LoraSpec(str(resolve_lora(lora_name, lookup=lora_lookup)), strength)),)


NODE_CLASS_MAPPINGS = {
    "FlenwheelLoadFlux": FlenwheelLoadFlux,
    "FlenwheelCharacterLora": FlenwheelCharacterLora,
    "FlenwheelFluxLora": FlenwheelFluxLora,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelLoadFlux": "FLENwheel Load FLUX",
    "FlenwheelCharacterLora": "FLENwheel Character LoRA",
    "FlenwheelFluxLora": "FLENwheel FLUX LoRA",
}
