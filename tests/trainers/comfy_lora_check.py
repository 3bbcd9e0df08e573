"""Load one of our LoRA files with ComfyUI's own code and report what it did.

Run it with the working directory set to a ComfyUI checkout.

Usage: python comfy_lora_check.py MODEL_FOLDER LORA_FILE [--key-map]
Builds ComfyUI's own model (FLUX.1, FLUX.2 or Qwen-Image) for MODEL_FOLDER/transformer/config.json
(random weights: only names and shapes matter; a ComfyUI without that model prints {"unsupported": why}),
builds ComfyUI's LoRA key map for it, loads the LoRA through comfy.lora.load_lora,
patches the model and prints a JSON
report: LoRA keys ComfyUI did not load, patches whose target weight is missing, and weights changed.
With ``--key-map`` it prints instead, for every LoRA module in the file, the model weight ComfyUI's
key map sends it to (without the ``diffusion_model.`` prefix) and the slice offset, if any.
"""

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, ".")
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing(False)
import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True
import comfy.lora  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
import torch  # noqa: E402


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def flux2_unet_config(config: dict) -> dict:
    """ComfyUI's FLUX.2 config (``comfy/model_detection.py``'s constants) with the tiny model's sizes."""
    return {
        "image_model": "flux2",
        "in_channels": config["in_channels"],
        "out_channels": config.get("out_channels") or config["in_channels"],
        "patch_size": 1,
        "vec_in_dim": None,
        "context_in_dim": config["joint_attention_dim"],
        "hidden_size": config["num_attention_heads"] * config["attention_head_dim"],
        "mlp_ratio": config["mlp_ratio"],
        "num_heads": config["num_attention_heads"],
        "depth": config["num_layers"],
        "depth_single_blocks": config["num_single_layers"],
        "axes_dim": list(config["axes_dims_rope"]),
        "theta": config["rope_theta"],
        "qkv_bias": False,
        "guidance_embed": config["guidance_embeds"],
        "global_modulation": True,
        "mlp_silu_act": True,
        "ops_bias": False,
        "default_ref_method": "index",
        "ref_index_scale": 10.0,
        "txt_ids_dims": [3],
    }


def comfy_unet_config(config: dict) -> dict:
    """ComfyUI's model config for a diffusers transformer config (ComfyUI's detection assumes full sizes)."""
    if config["_class_name"] == "Flux2Transformer2DModel":
        return flux2_unet_config(config)
    if config["_class_name"] == "FluxTransformer2DModel":
        return {
            "image_model": "flux",
            "in_channels": config["in_channels"] // 4,
            "out_channels": (config.get("out_channels") or config["in_channels"]) // 4,
            "patch_size": 2,
            "vec_in_dim": config["pooled_projection_dim"],
            "context_in_dim": config["joint_attention_dim"],
            "hidden_size": config["num_attention_heads"] * config["attention_head_dim"],
            "mlp_ratio": 4.0,
            "num_heads": config["num_attention_heads"],
            "depth": config["num_layers"],
            "depth_single_blocks": config["num_single_layers"],
            "axes_dim": list(config["axes_dims_rope"]),
            "theta": 10000,
            "qkv_bias": True,
            "guidance_embed": config["guidance_embeds"],
        }
    if config["_class_name"] == "ZImageTransformer2DModel":
        dim = config["dim"]
        return {
            "image_model": "lumina2",
            "patch_size": config["all_patch_size"][0],
            "in_channels": config["in_channels"],
            "dim": dim,
            "cap_feat_dim": config["cap_feat_dim"],
            "n_layers": config["n_layers"],
            "n_refiner_layers": config["n_refiner_layers"],
            "n_heads": config["n_heads"],
            "n_kv_heads": config["n_kv_heads"],
            "qk_norm": config["qk_norm"],
            "axes_dims": list(config["axes_dims"]),
            "axes_lens": list(config["axes_lens"]),
            "rope_theta": config["rope_theta"],
            "ffn_dim_multiplier": 8.0 / 3.0,
            "z_image_modulation": True,
            "time_scale": config["t_scale"],
            "pad_tokens_multiple": 32,
        }
    keys = (
        "patch_size",
        "in_channels",
        "out_channels",
        "num_layers",
        "attention_head_dim",
        "num_attention_heads",
        "joint_attention_dim",
        "guidance_embeds",
        "axes_dims_rope",
    )
    return {"image_model": "qwen_image", **{k: config[k] for k in keys if k in config}}


def fit_to_this_comfyui(unet_config: dict) -> dict:
    """Only the keys this ComfyUI's model class takes: 0.12 added ``txt_ids_dims`` to FLUX (empty for
    FLUX.1) and dropped ``guidance_embeds`` from Qwen-Image, which 0.3.64 wants. Z-Image's keys are
    NextDiT's (filtering them by Qwen-Image's would build a full-size model with no layers)."""
    import dataclasses
    import inspect

    if unet_config["image_model"] in ("flux", "flux2"):
        from comfy.ldm.flux.model import FluxParams

        taken = {field.name for field in dataclasses.fields(FluxParams)}
        unet_config = {"txt_ids_dims": [], **unet_config}
    elif unet_config["image_model"] == "lumina2":  # Z-Image: ComfyUI's NextDiT (0.3.64 has no Z-Image at all)
        from comfy.ldm.lumina.model import NextDiT

        taken = set(inspect.signature(NextDiT.__init__).parameters)
    else:
        from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel

        taken = set(inspect.signature(QwenImageTransformer2DModel.__init__).parameters)
    return {key: value for key, value in unet_config.items() if key in taken or key == "image_model"}


def build_model(model_folder: str):
    import comfy.model_patcher
    import comfy.supported_models

    config = json.loads((Path(model_folder) / "transformer" / "config.json").read_text())
    unet_config = comfy_unet_config(config)
    names = {"flux": "Flux", "flux2": "Flux2", "qwen_image": "QwenImage", "lumina2": "ZImage"}
    cls = getattr(comfy.supported_models, names[unet_config["image_model"]], None)
    if cls is None:
        version = Path("comfyui_version.py").read_text().split('"')[1]
        print(json.dumps({"unsupported": f"ComfyUI {version} has no {names[unet_config['image_model']]} model"}))
        sys.exit(0)
    model_config = cls(fit_to_this_comfyui(unet_config))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, device="cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device="cpu", offload_device="cpu")


def print_key_map(key_map: dict, lora: dict) -> None:
    modules = sorted({key.rsplit(".lora_A.", 1)[0] for key in lora if ".lora_A." in key})
    out = {}
    for module in modules:
        target = key_map.get(module)
        key, offset = (target, None) if isinstance(target, str) or target is None else target
        out[module] = [key.removeprefix("diffusion_model.") if key else None, list(offset) if offset else None]
    print(json.dumps(out))


def main(model_folder: str, lora_file: str, key_map_only: bool = False) -> None:
    patcher = build_model(model_folder)
    key_map = comfy.lora.model_lora_keys_unet(patcher.model, {})
    lora = comfy.utils.load_torch_file(lora_file)
    if key_map_only:
        print_key_map(key_map, lora)
        return
    collector = Collect()
    logging.getLogger().addHandler(collector)
    patches = comfy.lora.load_lora(lora, key_map)
    not_loaded = [
        line.split(": ", 1)[1] for line in collector.lines if line.startswith("lora key not loaded")
    ]
    model_keys = set(patcher.model_state_dict().keys())
    targets = [k[0] if isinstance(k, tuple) else k for k in patches]
    missing = [t for t in targets if t not in model_keys]
    before = {k: v.clone() for k, v in patcher.model_state_dict().items() if k in set(targets)}
    patched = patcher.add_patches(patches, 1.0)
    patcher.patch_model()
    after = patcher.model_state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    print(
        json.dumps(
            {
                "model": type(patcher.model).__name__,
                "lora_keys": len(lora),
                "not_loaded": not_loaded,
                "patches": len(patches),
                "patched": len(patched),
                "missing_targets": missing,
                "changed_weights": len(changed),
                "target_weights": len(before),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--key-map" in sys.argv[3:])
