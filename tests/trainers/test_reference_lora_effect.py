"""A trained LoRA file acts the same through our loader, diffusers' loader and ComfyUI's patch rule.

The three routes, at strength 1.0 and 0.5, on one forward pass of the tiny transformer:

- ours: ``core.models.pipelines.load_pipeline`` + ``core.models.loras.set_loras``;
- diffusers: the pipeline's own ``load_lora_weights`` + ``set_adapters``;
- ComfyUI: its patch rule implemented here, ``weight += strength * alpha / rank * up @ down`` on the
  weight ComfyUI's key map names (for FLUX the fused BFL layout: q/k/v are row slices of ``qkv``,
  the single blocks' q/k/v/mlp slices of ``linear1``), with alpha/rank = 1 when the file has no
  ``.alpha`` key. With ``COMFYUI_DIR`` set, the key map comes from ComfyUI's own ``comfy/lora.py``
  (through ``comfy_lora_check.py --key-map``) and must equal the one written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flenwheel.core.models.flux_single_file import bfl_to_diffusers, diffusers_to_bfl

CHECK = Path(__file__).with_name("comfy_lora_check.py")
STRENGTHS = (1.0, 0.5)
_FLUX_DOUBLE = {
    "attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj", "ff.net.0.proj": "img_mlp.0",
    "ff.net.2": "img_mlp.2", "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2",
    "norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin",
}
_FLUX_DOUBLE_QKV = {"attn.to_q": ("img_attn.qkv", 0), "attn.to_k": ("img_attn.qkv", 1),
                    "attn.to_v": ("img_attn.qkv", 2), "attn.add_q_proj": ("txt_attn.qkv", 0),
                    "attn.add_k_proj": ("txt_attn.qkv", 1), "attn.add_v_proj": ("txt_attn.qkv", 2)}
_FLUX_SINGLE = {"proj_out": "linear2", "norm.linear": "modulation.lin"}


def flux_key_map(module: str, hidden: int) -> tuple[str, list[int] | None]:
    """ComfyUI 0.3.64's ``flux_to_diffusers`` for one LoRA module: (BFL weight, [dim, start, length])."""
    _, container, index, layer = module.split(".", 3)
    if container == "transformer_blocks":
        if layer in _FLUX_DOUBLE_QKV:
            fused, part = _FLUX_DOUBLE_QKV[layer]
            return f"double_blocks.{index}.{fused}.weight", [0, part * hidden, hidden]
        return f"double_blocks.{index}.{_FLUX_DOUBLE[layer]}.weight", None
    slices = {"attn.to_q": [0, 0, hidden], "attn.to_k": [0, hidden, hidden], "attn.to_v": [0, 2 * hidden, hidden],
              "proj_mlp": [0, 3 * hidden, 4 * hidden]}
    if layer in slices:
        return f"single_blocks.{index}.linear1.weight", slices[layer]
    return f"single_blocks.{index}.{_FLUX_SINGLE[layer]}.weight", None


def comfy_patch(weights: dict, lora: dict, key_map: dict, strength: float) -> dict:
    """ComfyUI's LoRA rule on a state dict: weight (or its slice) += strength * alpha/rank * up @ down."""
    out = {key: value.clone() for key, value in weights.items()}
    for module, (key, offset) in key_map.items():
        down, up = lora[f"{module}.lora_A.weight"].float(), lora[f"{module}.lora_B.weight"].float()
        alpha = lora.get(f"{module}.alpha")
        scale = float(alpha) / down.shape[0] if alpha is not None else 1.0
        target = out[key].narrow(*offset) if offset else out[key]
        target += strength * scale * (up @ down)
    return out


def _comfyui_has(kind: str) -> bool:
    """True when COMFYUI_DIR names a ComfyUI whose own LoRA loader knows this family's model."""
    from flenwheel.core.models.registry import family

    folder = os.environ.get("COMFYUI_DIR")
    if not folder:
        return False
    version = (Path(folder) / "comfyui_version.py").read_text().split('"')[1]
    return family(kind).comfy_lora_note(version) is None


def _comfy_key_map(model: Path, lora: Path) -> dict:
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    result = subprocess.run([python, str(CHECK), str(model), str(lora), "--key-map"], cwd=os.environ["COMFYUI_DIR"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {module: tuple(target) for module, target in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def _inputs(kind: str, config: dict) -> dict:
    generator = torch.Generator().manual_seed(0)
    tokens, text = 16, 7
    randn = lambda *shape: torch.randn(*shape, generator=generator)  # noqa: E731
    common = {"hidden_states": randn(1, tokens, config["in_channels"]), "timestep": torch.tensor([0.7]),
              "encoder_hidden_states": randn(1, text, config["joint_attention_dim"]), "return_dict": False}
    if kind == "flux":
        ids = torch.stack(torch.meshgrid(torch.zeros(1), torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1)
        return {**common, "pooled_projections": randn(1, config["pooled_projection_dim"]),
                "guidance": torch.tensor([1.0]), "img_ids": ids.reshape(-1, 3), "txt_ids": torch.zeros(text, 3)}
    return {**common, "img_shapes": [[(1, 4, 4)]]}


def _transformer(kind: str, model: Path):
    from diffusers import FluxTransformer2DModel, QwenImageTransformer2DModel

    cls = FluxTransformer2DModel if kind == "flux" else QwenImageTransformer2DModel
    return cls.from_pretrained(model, subfolder="transformer").eval()


def _ours(kind: str, model: Path, lora: Path, strength: float, inputs: dict) -> torch.Tensor:
    from flenwheel.core.models.loras import LoraSpec, set_loras
    from flenwheel.core.models.pipelines import LoadOptions, load_pipeline

    handle = load_pipeline(kind, str(model), options=LoadOptions(dtype="fp32", device="cpu"))
    set_loras(handle, [LoraSpec(str(lora), strength)])
    with torch.no_grad():
        return handle.pipe.transformer(**inputs)[0]


def _diffusers(kind: str, model: Path, lora: Path, strength: float, inputs: dict) -> torch.Tensor:
    from diffusers import FluxPipeline, QwenImageEditPlusPipeline

    if kind == "flux":
        pipe = FluxPipeline.from_pretrained(model, text_encoder=None, text_encoder_2=None, tokenizer=None,
                                            tokenizer_2=None, vae=None)
    else:
        pipe = QwenImageEditPlusPipeline.from_pretrained(model, text_encoder=None, tokenizer=None, processor=None,
                                                         vae=None)
    pipe.load_lora_weights(str(lora), adapter_name="check")
    pipe.set_adapters(["check"], adapter_weights=[strength])
    with torch.no_grad():
        return pipe.transformer(**inputs)[0]


def _comfy(kind: str, model: Path, lora: Path, strength: float, inputs: dict, key_map: dict) -> torch.Tensor:
    from safetensors.torch import load_file

    transformer = _transformer(kind, model)
    tensors = load_file(str(lora))
    base = transformer.state_dict()
    if kind == "flux":
        patched = bfl_to_diffusers(comfy_patch(diffusers_to_bfl(base), tensors, key_map, strength))
    else:
        patched = comfy_patch(base, tensors, key_map, strength)
    transformer.load_state_dict(patched)
    with torch.no_grad():
        return transformer(**inputs)[0]


@pytest.mark.parametrize("kind", ["flux", "qwen-edit", "qwen-edit-2511"])
def test_lora_effect_is_the_same_through_ours_diffusers_and_comfyui(loras, kind):
    from safetensors.torch import load_file

    model, lora = loras[kind]
    config = json.loads((model / "transformer" / "config.json").read_text())
    hidden = config["num_attention_heads"] * config["attention_head_dim"]
    modules = sorted({key.rsplit(".lora_A.", 1)[0] for key in load_file(str(lora)) if ".lora_A." in key})
    if kind == "flux":
        key_map = {module: flux_key_map(module, hidden) for module in modules}
    else:
        key_map = {module: (module.removeprefix("transformer.") + ".weight", None) for module in modules}
    if os.environ.get("COMFYUI_DIR"):
        assert _comfy_key_map(model, lora) == key_map
    inputs = _inputs(kind, config)
    with torch.no_grad():
        base = _transformer(kind, model)(**inputs)[0]
    effects = []
    for strength in STRENGTHS:
        ours = _ours(kind, model, lora, strength, inputs)
        theirs = _diffusers(kind, model, lora, strength, inputs)
        comfy = _comfy(kind, model, lora, strength, inputs, key_map)
        effect = (ours - base).abs().max().item()
        assert effect > 1e-3, f"the LoRA changes nothing at strength {strength}"
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (strength, (ours - theirs).abs().max())
        assert torch.allclose(ours, comfy, atol=1e-5, rtol=0), (strength, (ours - comfy).abs().max())
        effects.append(effect)
    assert effects[1] < effects[0]  # half strength, smaller change


#: ComfyUI's z_image_to_diffusers: q/k/v are row slices of each block's fused ``attention.qkv``.
_Z_IMAGE_QKV = {"attention.to_q": 0, "attention.to_k": 1, "attention.to_v": 2}


def z_image_key_map(module: str, dim: int) -> tuple[str, list[int] | None]:
    """ComfyUI's Z-Image key map for one LoRA module: (ComfyUI-layout weight, [dim, start, length])."""
    container, index, layer = module.removeprefix("transformer.").split(".", 2)
    if layer in _Z_IMAGE_QKV:
        return f"{container}.{index}.attention.qkv.weight", [0, _Z_IMAGE_QKV[layer] * dim, dim]
    return f"{container}.{index}.{layer.replace('attention.to_out.0', 'attention.out')}.weight", None


def _z_image_forward(transformer) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    latents = [torch.randn(4, 1, 8, 8, generator=generator)]
    captions = [torch.randn(7, 16, generator=generator)]
    with torch.no_grad():
        return transformer(latents, torch.tensor([0.3]), captions, return_dict=False)[0][0]


def test_z_image_lora_effect_is_the_same_through_ours_diffusers_and_comfyui(tiny_z_image, z_image_lora):
    """ComfyUI's side patches the transformer in ComfyUI's file layout (fused qkv, ``attention.out``)
    and converts it back with diffusers' own single-file converter, not ours."""
    from diffusers import ZImagePipeline, ZImageTransformer2DModel
    from diffusers.loaders.single_file_utils import convert_z_image_transformer_checkpoint_to_diffusers
    from safetensors.torch import load_file

    from flenwheel.core.models.loras import LoraSpec, set_loras
    from flenwheel.core.models.pipelines import LoadOptions, load_pipeline
    from flenwheel.core.testing.tiny_bases import z_image_to_comfy

    tensors = load_file(str(z_image_lora))
    dim = json.loads((tiny_z_image / "transformer" / "config.json").read_text())["dim"]
    modules = sorted({key.rsplit(".lora_A.", 1)[0] for key in tensors if ".lora_A." in key})
    key_map = {module: z_image_key_map(module, dim) for module in modules}
    if _comfyui_has("z-image"):  # 0.3.64 has no Z-Image model; the patch rule below still runs
        assert _comfy_key_map(tiny_z_image, z_image_lora) == key_map
    reference = ZImageTransformer2DModel.from_pretrained(tiny_z_image, subfolder="transformer").eval()
    base = _z_image_forward(reference)
    ours = load_pipeline("z-image", str(tiny_z_image), options=LoadOptions(dtype="fp32", device="cpu"))
    theirs = ZImagePipeline.from_pretrained(tiny_z_image, text_encoder=None, tokenizer=None, vae=None)
    theirs.load_lora_weights(str(z_image_lora), adapter_name="check")
    effects = []
    for strength in STRENGTHS:
        set_loras(ours, [LoraSpec(str(z_image_lora), strength)])
        theirs.set_adapters(["check"], adapter_weights=[strength])
        comfy_state = comfy_patch(z_image_to_comfy(reference.state_dict()), tensors, key_map, strength)
        comfy = ZImageTransformer2DModel.from_pretrained(tiny_z_image, subfolder="transformer").eval()
        comfy.load_state_dict(convert_z_image_transformer_checkpoint_to_diffusers(comfy_state))
        outputs = [_z_image_forward(model) for model in (ours.pipe.transformer, theirs.transformer, comfy)]
        effect = (outputs[0] - base).abs().max().item()
        assert effect > 1e-3, f"the LoRA changes nothing at strength {strength}"
        for other in outputs[1:]:
            assert torch.allclose(outputs[0], other, atol=1e-5, rtol=0), (strength, (outputs[0] - other).abs().max())
        effects.append(effect)
    assert effects[1] < effects[0]
