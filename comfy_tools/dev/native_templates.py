"""Templates whose images come from ComfyUI's own loaders and samplers, feeding the flywheel's datasets.

Each pairs FLENwheel Flywheel Items (the plan as ComfyUI lists) with Save Flywheel Images (the
images back into the planned dataset version) around the graph a ComfyUI user already knows:
FLUX.1-dev through ``UNETLoader`` + ``LoraLoaderModelOnly`` + ``DualCLIPLoader``, Z-Image-Turbo
through ``CLIPLoader`` (``lumina2``) + ``ModelSamplingAuraFlow`` as in ComfyUI's own Z-Image template,
and Qwen-Image-Edit-2509 through ``TextEncodeQwenImageEditPlus`` as in ComfyUI's own template. The
notes name every model file and the ComfyUI folder it goes in.
"""

from __future__ import annotations

from ...core.models.registry import family
from .workflow_build import Group, Node, Template
from .workflow_templates import note, project, text

NATIVE_INTRO = ("ComfyUI's own loaders and sampler make the images; FLENwheel's **Flywheel Items** hands out the "
                "plan as a list (ComfyUI runs the graph once per item) and **Save Flywheel Images** writes each "
                "into the same dataset FLENwheel's own nodes fill, with its prompt, seed, models, LoRAs and "
                "this graph in the PNG. Queue again to make only what is missing (and retry drifted faces).")
FLUX_FILES = ("**Needs:** these model files in ComfyUI's model folders (nothing is downloaded); a GPU for "
              "real speed. `models/diffusion_models/flux1-dev.safetensors` (or an fp8 / GGUF single "
              "file), `models/text_encoders/clip_l.safetensors` and `t5xxl_fp8_e4m3fn.safetensors`, "
              "`models/vae/ae.safetensors`, and the character LoRA copied from "
              "`<project>/models/flux_lora/char_v1/char_lora_v1.safetensors` to `models/loras/`.")
Z_IMAGE = family("z-image")
Z_IMAGE_FILES = ("**Needs:** ComfyUI " + ".".join(str(Z_IMAGE.comfy_lora_since).split(".")[:2]) + " or newer (the "
                 "oldest whose LoRA loader was checked to map every key of a FLENwheel Z-Image LoRA), these model "
                 "files in ComfyUI's model folders (nothing is downloaded) and a GPU for real speed (about 16 GB "
                 "in bf16). `models/diffusion_models/z_image_turbo_bf16.safetensors`, "
                 "`models/text_encoders/qwen_3_4b.safetensors`, `models/vae/ae.safetensors` (the files of "
                 "ComfyUI's own Z-Image-Turbo template), and the character LoRA trained on Z-Image (Base) copied "
                 "from `<project>/models/flux_lora/char_v1/char_lora_v1.safetensors` to `models/loras/`. Turbo "
                 "makes an image in 8 steps without CFG; for Base itself load `z_image_bf16.safetensors` and set "
                 "the sampler to about 30 steps at cfg 4 with a real negative prompt.")
QWEN_FILES = ("**Needs:** these model files in ComfyUI's model folders (nothing is downloaded); a GPU for "
              "real speed. `models/diffusion_models/qwen_image_edit_2509_fp8_e4m3fn.safetensors`, "
              "`models/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors`, "
              "`models/vae/qwen_image_vae.safetensors` (the files of ComfyUI's own Qwen-Image-Edit "
              "template).")


def sampled(step: str, column: int, model: str, sampler: dict, guidance: float | None) -> list[Node]:
    """Flywheel Items -> prompt (FLUX's guidance when given; a zeroed negative) -> KSampler -> VAEDecode."""
    positive = "guidance.CONDITIONING" if guidance is not None else "encode.CONDITIONING"
    return [
        Node("items", "FlenwheelFlywheelItems", column, {"step": step}, {"project": "project.project"},
             title="Flywheel Items", width=340),
        Node("encode", "CLIPTextEncode", column + 1, {}, {"clip": "clip.CLIP", "text": "items.prompt"},
             title="Prompt", width=300),
        *([Node("guidance", "FluxGuidance", column + 1, {"guidance": guidance},
                {"conditioning": "encode.CONDITIONING"}, width=300)] if guidance is not None else []),
        Node("negative", "ConditioningZeroOut", column + 1, {}, {"conditioning": "encode.CONDITIONING"},
             width=300),
        Node("latent", "EmptySD3LatentImage", column + 1, {}, {"width": "items.width", "height": "items.height"},
             width=300),
        Node("sampler", "KSampler", column + 2, {**sampler, "scheduler": "simple"},
             {"model": model, "seed": "items.seed", "positive": positive, "negative": "negative.CONDITIONING",
              "latent_image": "latent.LATENT"}, width=320),
        Node("decode", "VAEDecode", column + 2, {}, {"samples": "sampler.LATENT", "vae": "vae.VAE"}, width=320),
    ]


def native_flux(step: str, column: int = 2) -> list[Node]:
    """ComfyUI's FLUX.1-dev graph with the character LoRA, fed one item at a time."""
    return [
        Node("unet", "UNETLoader", 1, {"unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8_e4m3fn"},
             title="Load FLUX.1-dev", width=320),
        Node("lora", "LoraLoaderModelOnly", 1, {"lora_name": "char_lora_v1.safetensors", "strength_model": 1.0},
             {"model": "unet.MODEL"}, title="Character LoRA", width=320),
        Node("clip", "DualCLIPLoader", 1, {"clip_name1": "clip_l.safetensors",
                                           "clip_name2": "t5xxl_fp8_e4m3fn.safetensors", "type": "flux"},
             title="FLUX text encoders", width=320),
        Node("vae", "VAELoader", 1, {"vae_name": "ae.safetensors"}, title="FLUX VAE", width=320),
        *sampled(step, column, "lora.MODEL", {"steps": 28, "cfg": 1.0, "sampler_name": "euler"}, guidance=3.5),
    ]


def native_z_image(step: str, column: int = 2) -> list[Node]:
    """ComfyUI's Z-Image-Turbo graph with the character LoRA (trained on Base), fed one item at a time."""
    return [
        Node("unet", "UNETLoader", 1, {"unet_name": "z_image_turbo_bf16.safetensors", "weight_dtype": "default"},
             title="Load Z-Image-Turbo", width=320),
        Node("lora", "LoraLoaderModelOnly", 1, {"lora_name": "char_lora_v1.safetensors", "strength_model": 1.0},
             {"model": "unet.MODEL"}, title="Character LoRA", width=320),
        Node("shift", "ModelSamplingAuraFlow", 1, {"shift": 3.0}, {"model": "lora.MODEL"}, width=320),
        Node("clip", "CLIPLoader", 1, {"clip_name": "qwen_3_4b.safetensors", "type": "lumina2"},
             title="Qwen3-4B text encoder", width=320),
        Node("vae", "VAELoader", 1, {"vae_name": "ae.safetensors"}, title="Z-Image VAE", width=320),
        *sampled(step, column, "shift.MODEL", {"steps": 8, "cfg": 1.0, "sampler_name": "res_multistep"},
                 guidance=None),
    ]


def native_save(column: int, title: str, gate: str = "off") -> list[Node]:
    return [
        Node("save", "FlenwheelSaveFlywheelImages", column, {"identity_gate": gate},
             {"project": "project.project", "images": "decode.IMAGE", "item_id": "items.item_id"},
             title="Save Flywheel Images", width=340),
        text("plan", column + 1, "items.summary", "Plan"),
        text("summary", column + 1, "save.summary", title),
    ]


def native_generate() -> Template:
    return Template("14 Generate with your own FLUX graph", note(
        "14 · Generate with ComfyUI's own FLUX nodes",
        NATIVE_INTRO,
        "Writes `data/synthetic/vN/` from the prompt set (angles, expressions, scenarios, poses x variants); "
        "the identity filter, pristine review and training v2 read it unchanged. Set identity_gate `auto` on "
        "the save node to score faces as they arrive.",
        FLUX_FILES),
        [project(), *native_flux("generate"), *native_save(5, "Saved")],
        [Group("ComfyUI's own FLUX.1-dev", ("unet", "lora", "clip", "vae"))])


def native_enrich() -> Template:
    return Template("15 Enrich with your own Qwen-Edit graph", note(
        "15 · Enrich with ComfyUI's own Qwen-Image-Edit nodes",
        NATIVE_INTRO,
        "One item per source photo x edit template, into `data/enriched/vN/` with each edit linked to its "
        "source: review, triplets and training read it unchanged. With identity_gate `auto` a drifted face is "
        "not kept yet: queue again to retry it with a new seed (up to max_retries times). Add a "
        "`LoraLoaderModelOnly` after the model loader for the Multiple-angles or Lightning LoRAs.",
        QWEN_FILES),
        [project(),
         Node("unet", "UNETLoader", 1, {"unet_name": "qwen_image_edit_2509_fp8_e4m3fn.safetensors",
                                        "weight_dtype": "default"}, title="Load Qwen-Image-Edit-2509", width=340),
         Node("clip", "CLIPLoader", 1, {"clip_name": "qwen_2.5_vl_7b_fp8_scaled.safetensors", "type": "qwen_image"},
              title="Qwen2.5-VL text encoder", width=340),
         Node("vae", "VAELoader", 1, {"vae_name": "qwen_image_vae.safetensors"}, title="Qwen-Image VAE", width=340),
         Node("shift", "ModelSamplingAuraFlow", 1, {"shift": 3.0}, {"model": "unet.MODEL"}, width=340),
         Node("norm", "CFGNorm", 1, {"strength": 1.0}, {"model": "shift.MODEL"}, width=340),
         Node("items", "FlenwheelFlywheelItems", 2, {"step": "enrich"}, {"project": "project.project"},
              title="Flywheel Items", width=340),
         Node("scale", "ImageScaleToTotalPixels", 3, {"upscale_method": "lanczos", "megapixels": 1.0},
              {"image": "items.source_image"}, width=300),
         Node("encode", "TextEncodeQwenImageEditPlus", 3, {},
              {"clip": "clip.CLIP", "vae": "vae.VAE", "image1": "scale.IMAGE", "prompt": "items.prompt"},
              title="Edit prompt", width=300),
         Node("negative", "TextEncodeQwenImageEditPlus", 3, {"prompt": ""},
              {"clip": "clip.CLIP", "vae": "vae.VAE", "image1": "scale.IMAGE"}, title="Negative", width=300),
         Node("latent", "VAEEncode", 3, {}, {"pixels": "scale.IMAGE", "vae": "vae.VAE"}, width=300),
         Node("sampler", "KSampler", 4, {"steps": 20, "cfg": 2.5, "sampler_name": "euler", "scheduler": "simple"},
              {"model": "norm.patched_model", "seed": "items.seed", "positive": "encode.CONDITIONING",
               "negative": "negative.CONDITIONING", "latent_image": "latent.LATENT"}, width=320),
         Node("decode", "VAEDecode", 4, {}, {"samples": "sampler.LATENT", "vae": "vae.VAE"}, width=320),
         *native_save(5, "Saved", gate="auto")],
        [Group("ComfyUI's own Qwen-Image-Edit-2509", ("unet", "clip", "vae", "shift", "norm"))])


def native_model_card() -> Template:
    return Template("16 Model card from your own FLUX graph", note(
        "16 · Model card from ComfyUI's own FLUX nodes",
        NATIVE_INTRO,
        "The card's cells x tries as items (23 prompts, fixed seeds), the images into `data/benchmark/vN/`, "
        "each scored with the card's checks; `benchmarks/<label>/` gets results.json, model_card.png and "
        "report.html as the FLENwheel card node writes them. Keep *label* in step with the LoRA you load.",
        FLUX_FILES),
        [project(), *native_flux("model_card"), *native_save(5, "Model card")],
        [Group("ComfyUI's own FLUX.1-dev", ("unet", "lora", "clip", "vae"))])


def native_z_image_generate() -> Template:
    return Template("17 Generate with your own Z-Image graph", note(
        "17 · Generate with ComfyUI's own Z-Image nodes",
        NATIVE_INTRO,
        "Template 14 with Z-Image-Turbo in place of FLUX.1-dev: `data/synthetic/vN/` from the prompt set, "
        "which the identity filter, pristine review and the next training read unchanged. Z-Image (Base and "
        "Turbo) is Apache-2.0, so its images and LoRAs may be used commercially.",
        Z_IMAGE_FILES),
        [project(), *native_z_image("generate"), *native_save(5, "Saved")],
        [Group("ComfyUI's own Z-Image-Turbo", ("unet", "lora", "shift", "clip", "vae"))])


def native_z_image_model_card() -> Template:
    return Template("18 Model card from your own Z-Image graph", note(
        "18 · Model card from ComfyUI's own Z-Image nodes",
        NATIVE_INTRO,
        "Template 16 with Z-Image-Turbo: the card's 23 prompts x tries into `data/benchmark/vN/`, each scored "
        "with the card's checks, and `benchmarks/<label>/` with results.json, model_card.png and report.html. "
        "Keep *label* in step with the LoRA you load.",
        Z_IMAGE_FILES),
        [project(), *native_z_image("model_card"), *native_save(5, "Model card")],
        [Group("ComfyUI's own Z-Image-Turbo", ("unet", "lora", "shift", "clip", "vae"))])


NATIVE_TEMPLATES = (native_generate, native_enrich, native_model_card, native_z_image_generate,
                    native_z_image_model_card)
