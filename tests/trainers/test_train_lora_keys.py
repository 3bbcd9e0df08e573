"""Our LoRA files in ComfyUI: every key mapped by ComfyUI's own LoraLoader code.

With a ComfyUI checkout in ``COMFYUI_DIR`` (its requirements importable by this interpreter, or by
``COMFYUI_PYTHON``), ``comfy_lora_check.py`` builds ComfyUI's own FLUX / Qwen-Image model for the
tiny config, maps our file with ``comfy.lora.model_lora_keys_unet`` + ``comfy.lora.load_lora`` and
patches the weights. Without one, the documented key-pattern check below runs instead: ComfyUI
0.3.64 maps ``transformer.<diffusers module>`` for every FLUX block layer listed in
``comfy.utils.flux_to_diffusers`` (q/k/v into the fused qkv slices), and for Qwen-Image every
``transformer.<module>`` whose ``<module>.weight`` exists in its model, whose names are diffusers' own.
Qwen-Image-Edit-2511 has 2509's architecture (only ``zero_cond_t`` differs), so its LoRA keys map the
same way. FLUX.2 [klein] is unknown to ComfyUI 0.3.64; from 0.11 ComfyUI's own code maps every key of a
klein LoRA (checked here with COMFYUI_DIR at 0.12.1; below 0.11 the test skips with the note the nodes show).
Z-Image needs a ComfyUI with ``comfy.supported_models.ZImage`` (December 2025 on); its key map sends
``transformer.<block>.<n>.attention.to_q`` / ``to_k`` / ``to_v`` into the fused ``attention.qkv`` and ``to_out.0``
to ``attention.out``, for the main layers and both refiners.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CHECK = Path(__file__).with_name("comfy_lora_check.py")
COMFYUI_DIR = os.environ.get("COMFYUI_DIR")

#: Block layers ComfyUI 0.3.64's flux_to_diffusers maps (diffusers name -> BFL fused layout).
COMFY_FLUX_DOUBLE = {
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_out.0",
    "attn.to_add_out",
    "norm1.linear",
    "norm1_context.linear",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
}
COMFY_FLUX_SINGLE = {"attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "proj_out", "norm.linear"}
_KEY = re.compile(
    r"^transformer\.((?:single_)?transformer_blocks)\.(\d+)\.(.+)\.(lora_A\.weight|lora_B\.weight|alpha)$"
)


COMFY_MODEL = {"flux": "Flux", "flux2-klein": "Flux2", "qwen-edit": "QwenImage", "qwen-edit-2511": "QwenImage"}


@pytest.mark.skipif(
    not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to test with ComfyUI's own code"
)
@pytest.mark.parametrize("kind", ["flux", "flux2-klein", "qwen-edit", "qwen-edit-2511"])
def test_comfyui_maps_and_applies_every_key(loras, kind):
    from flenwheel.core.models.registry import family

    version = (Path(COMFYUI_DIR) / "comfyui_version.py").read_text().split('"')[1]
    note = family(kind).comfy_lora_note(version)
    if note:  # below the version the product names, the nodes say so instead (test_train_nodes.py)
        pytest.skip(note)
    model, lora = loras[kind]
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    result = subprocess.run(
        [python, str(CHECK), str(model), str(lora)],
        cwd=COMFYUI_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    from safetensors.torch import load_file

    modules = {k.rsplit(".lora_A", 1)[0] for k in load_file(str(lora)) if ".lora_A." in k}
    assert report.get("model") == COMFY_MODEL[kind], report
    assert report["not_loaded"] == [] and report["missing_targets"] == []
    assert report["patches"] == report["patched"] == len(modules)
    assert report["changed_weights"] > 0


@pytest.mark.skipif(
    not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout with Z-Image support to test with its own code"
)
def test_comfyui_maps_and_applies_every_z_image_key(tiny_z_image, z_image_lora):
    from flenwheel.core.models.registry import family

    version = (Path(COMFYUI_DIR) / "comfyui_version.py").read_text().split('"')[1]
    note = family("z-image").comfy_lora_note(version)
    if note:  # 0.3.64 has no Z-Image model: the nodes say so instead
        pytest.skip(note)
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    result = subprocess.run([python, str(CHECK), str(tiny_z_image), str(z_image_lora)], cwd=COMFYUI_DIR,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    from safetensors.torch import load_file

    modules = {k.rsplit(".lora_A", 1)[0] for k in load_file(str(z_image_lora)) if ".lora_A." in k}
    assert report["model"] == "Lumina2"
    assert report["not_loaded"] == [] and report["missing_targets"] == []
    assert report["patches"] == len(modules) and report["changed_weights"] == report["target_weights"] > 0


def _module_weights(model_dir: Path, kind: str) -> dict[str, torch.Size]:
    from diffusers import FluxTransformer2DModel, QwenImageTransformer2DModel

    cls = FluxTransformer2DModel if kind == "flux" else QwenImageTransformer2DModel
    model = cls.from_pretrained(model_dir, subfolder="transformer")
    return {
        name: module.weight.shape
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }


@pytest.mark.parametrize("kind", ["flux", "qwen-edit", "qwen-edit-2511"])
def test_documented_key_pattern(loras, kind):
    from safetensors.torch import load_file

    model, lora = loras[kind]
    weights = _module_weights(model, kind)
    tensors = load_file(str(lora))
    modules = set()
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        assert match, f"{key} is not transformer.<block>.<n>.<module>.lora_A/lora_B/alpha"
        container, index, module, part = match.groups()
        name = f"{container}.{index}.{module}"
        assert name in weights, f"{key}: the transformer has no layer {name}"
        if kind == "flux":
            allowed = COMFY_FLUX_SINGLE if container == "single_transformer_blocks" else COMFY_FLUX_DOUBLE
            assert module in allowed, f"{key}: ComfyUI's flux_to_diffusers does not map {module}"
        out_features, in_features = weights[name]
        if part == "lora_A.weight":
            assert tensor.shape == (4, in_features)
        elif part == "lora_B.weight":
            assert tensor.shape == (out_features, 4)
        else:
            assert tensor.item() == 4.0  # alpha == rank: the scale is folded into lora_B
        modules.add(name)
    has_alpha = any(k.endswith(".alpha") for k in tensors)
    assert has_alpha == (kind == "flux")  # diffusers' Qwen loader wants unprefixed keys once .alpha appears
    assert len(tensors) == len(modules) * (3 if has_alpha else 2)


def test_the_header_alpha_is_the_alpha_the_weights_hold(tmp_path):
    """alpha/rank is folded into lora_B, so the file's alpha is the rank; ``ss_network_alpha`` must say so, or a
    tool scaling by ss_network_alpha / ss_network_dim applies the training scale (here 2x) a second time."""
    from safetensors.torch import load_file

    from flenwheel.trainers.lora_io import export_state, read_metadata, save_lora

    rank, alpha = 4, 8.0
    down, up = torch.randn(rank, 16), torch.randn(16, rank)
    trainable = {"base_model.model.blocks.0.attn.to_q.lora_A.default.weight": down,
                 "base_model.model.blocks.0.attn.to_q.lora_B.default.weight": up}
    file = save_lora(tmp_path / "lora.safetensors", export_state(trainable, rank, alpha, "fp32"),
                     {"rank": rank, "alpha": alpha, "alpha_folded_into_weights": True})
    meta, tensors = read_metadata(file), load_file(file)
    stored_alpha = float(tensors["transformer.blocks.0.attn.to_q.alpha"])
    assert float(meta["ss_network_alpha"]) == stored_alpha == rank and meta["ss_network_dim"] == str(rank)
    assert meta["flenwheel.alpha"] == "8.0", "the training alpha stays on record"
    header_scale = float(meta["ss_network_alpha"]) / float(meta["ss_network_dim"])
    applied = header_scale * tensors["transformer.blocks.0.attn.to_q.lora_B.weight"] @ \
        tensors["transformer.blocks.0.attn.to_q.lora_A.weight"]
    assert torch.allclose(applied, (alpha / rank) * up @ down, atol=1e-5), "the trained update, once"
