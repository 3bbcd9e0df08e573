"""FLENwheel Qwen-Image-Edit Loader: Qwen-Image-Edit-2509 with memory options and up to three LoRAs.

The output is a pipeline handle: ComfyUI caches it, and the base model stays loaded when only the
LoRAs or their strengths change (see ``core.qwen_edit_loader``).
"""

from __future__ import annotations

from pathlib import Path

from ..core.data.availability import missing_note
from ..core.data.errors import ModelLoadError
from ..core.data.project import Project
from ..core.models.editor_lora import resolve_lora
from ..core.models.loras import LoraSpec
from ..core.models.pipelines import LoadOptions
from ..core.models.qwen_edit_loader import load_qwen_edit
from ..core.models.registry import QWEN_EDIT_2509
from ._comfy import free_comfy_memory, model_folder_dirs, model_folder_files, model_folder_path
from ._places import checked_loras, checked_model
from ._types import CATEGORY, PROJECT, QWEN_EDIT_PIPELINE, memory_input

NO_FILE = "(use the model's own transformer)"
NO_LORA = "None"
LORA_SLOTS = 3


def resolve_model(value: str) -> str:
    """A folder name inside ComfyUI's models/diffusers, else the value as given (path or hub id)."""
    text = value.strip()
    if text and not Path(text).expanduser().is_absolute():
        for base in model_folder_dirs("diffusers"):
            candidate = Path(base) / text
            if (candidate / "model_index.json").is_file():
                return str(candidate)
    return text


def lora_specs(slots: list[tuple[str, float]], extra: str, project: Project | None = None) -> list[LoraSpec]:
    """Chosen LoRA files (ComfyUI's loras folder) plus ``PATH:STRENGTH`` or ``ours:vN`` lines."""
    specs = [LoraSpec(model_folder_path("loras", name), strength)
             for name, strength in slots if name and name != NO_LORA]
    for line in extra.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            specs.append(resolve_lora(line.strip(), project))
    return specs


class FlenwheelQwenEditLoader:
    DESCRIPTION = (
        "Loads Qwen-Image-Edit-2509 (diffusers folder or hub id, optionally with a single-file transformer "
        "from models/diffusion_models) with memory options and up to three LoRAs (e.g. the Multiple-angles "
        "LoRA at 1.25, or the project's editor LoRA). Changing only LoRAs or strengths keeps the base "
        "loaded. "
        "The VAE and text encoder always come from the diffusers folder or hub id: ComfyUI's repacked "
        "text-encoder and Qwen VAE files cannot be read by diffusers/transformers."
    ) + missing_note("bitsandbytes")
    CATEGORY = f"{CATEGORY}/models"
    RETURN_TYPES = (QWEN_EDIT_PIPELINE, "STRING")
    RETURN_NAMES = ("qwen_edit", "description")
    OUTPUT_TOOLTIPS = ("The loaded edit pipeline, for Qwen Edit Enrich.", "What was loaded, with LoRAs.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        loras = [NO_LORA, *model_folder_files("loras")]
        slots = {}
        for index in range(1, LORA_SLOTS + 1):
            slots[f"lora_{index}"] = (loras, {
                "default": NO_LORA, "tooltip": f"LoRA {index} from ComfyUI's loras folder (None: off)."})
            slots[f"strength_{index}"] = ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.05,
                                                   "tooltip": f"Strength of LoRA {index} (0 = no effect)."})
        return {
            "required": {
                "model": ("STRING", {"default": QWEN_EDIT_2509.hub_id, "tooltip": (
                    "Diffusers folder (absolute path, or a folder in models/diffusers) or hub id; it "
                    "supplies the VAE, text encoder, tokenizer and processor.")}),
                "transformer_file": ([NO_FILE, *model_folder_files(QWEN_EDIT_2509.comfy_folder("transformer"))], {
                    "default": NO_FILE,
                    "tooltip": "Single-file Qwen-Image-Edit-2509 transformer (bf16 or fp8) used instead of "
                               "the folder's."}),
                "dtype": memory_input("dtype", "Compute precision."),
                "quantize": memory_input("quantize", (
                    "bitsandbytes 4-bit NF4 or 8-bit for the transformer (NVIDIA GPU; about 12 GB instead "
                    "of 41 GB); fp8: weights stored in fp8, computed in dtype (about 20 GB, closer to bf16).")),
                "quantize_text_encoder": memory_input("quantize_text_encoder", (
                    "bitsandbytes 4-bit NF4 or 8-bit for the Qwen2.5-VL text encoder (NVIDIA GPU).")),
                "offload": memory_input("offload", (
                    "model: one component on the GPU at a time (about half the VRAM); group: one block at a "
                    "time, the next copied on a CUDA stream (little VRAM, nearly full speed); sequential: "
                    "layer by layer (least VRAM, slow).")),
                "vae_tiling": memory_input("vae_tiling", "Decode in tiles to save VRAM."),
                **slots,
            },
            "optional": {
                "extra_loras": ("STRING", {"default": "", "multiline": True, "tooltip": (
                    "More LoRAs, one per line: PATH:STRENGTH, a LoRA folder, or the project's editor LoRA as "
                    "ours:v1 (ours:latest, ours:v1:0.8; needs the project input).")}),
                "project": (PROJECT, {"tooltip": "The character project, to resolve ours:vN editor LoRAs."}),
            },
        }

    def load(self, model, transformer_file, dtype, quantize, quantize_text_encoder, offload, vae_tiling,
             extra_loras="", project=None, **slots):
        source = checked_model(resolve_model(model))
        if not source:
            raise ModelLoadError(f"no model given: enter a diffusers folder or {QWEN_EDIT_2509.hub_id}")
        file = None
        if transformer_file != NO_FILE:
            file = model_folder_path(QWEN_EDIT_2509.comfy_folder("transformer"), transformer_file)
        pairs = [(slots.get(f"lora_{i}", NO_LORA), slots.get(f"strength_{i}", 1.0))
                 for i in range(1, LORA_SLOTS + 1)]
        options = LoadOptions(dtype=dtype, quantize=quantize, quantize_text_encoder=quantize_text_encoder,
                              offload=offload, vae_tiling=vae_tiling)
        specs = lora_specs(pairs, extra_loras, project)
        checked_loras(spec.path for spec in specs)
        handle = load_qwen_edit(source, file, options, specs,
                                before_load=free_comfy_memory)
        loras = ", ".join(f"{Path(ref['path']).name} @ {ref['strength']:g}" for ref in handle.loras)
        return (handle, f"{handle.describe()}; {loras or 'no LoRAs'}")


NODE_CLASS_MAPPINGS = {"FlenwheelQwenEditLoader": FlenwheelQwenEditLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelQwenEditLoader": "FLENwheel Qwen-Image-Edit Loader"}
