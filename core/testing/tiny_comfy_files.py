"""The tiny FLUX pipeline written as the single files a ComfyUI user keeps in its model folders.

Single-file loading must be tested on files laid out like the real ones: the transformer in
Black Forest Labs' layout (``flux1-dev.safetensors``), the autoencoder in the LDM layout
(``ae.safetensors``), ``clip_l`` with ``text_model.`` keys and ``t5xxl`` with only the shared
embedding stored. The VAE goes the opposite way of diffusers' own LDM converter, which then
reads it back, so the two layouts are checked against an independent implementation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..models.flux_single_file import FluxFiles, diffusers_to_bfl

_Rule = tuple[str, "str | Callable[[re.Match[str]], str]"]


def _vae_rules(up_blocks: int) -> list[_Rule]:
    return [
        (r"^(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out."),
        (r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2."),
        (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample."),
        (r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.", lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}."),
        (r"^(encoder|decoder)\.mid_block\.attentions\.0\.", r"\1.mid.attn_1."),
        (
            r"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.",
            lambda m: f"decoder.up.{up_blocks - 1 - int(m[1])}.block.{m[2]}.",
        ),
        (
            r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.",
            lambda m: f"decoder.up.{up_blocks - 1 - int(m[1])}.upsample.",
        ),
    ]


_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def vae_to_ldm(state_dict: dict[str, Any], up_blocks: int) -> dict[str, Any]:
    """diffusers AutoencoderKL keys to the LDM layout of FLUX's ``ae.safetensors``."""
    out: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        new = key
        for pattern, replacement in _vae_rules(up_blocks):
            new = re.sub(pattern, replacement, new)
        new = new.replace("conv_shortcut.", "nin_shortcut.")
        if ".mid.attn_1." in new:
            for old, ldm in _ATTENTION.items():
                new = new.replace(f".attn_1.{old}", f".attn_1.{ldm}")
            if tensor.ndim == 2:
                tensor = tensor[:, :, None, None]
        out[new] = tensor
    return out


def _save(tensors: dict[str, Any], path: Path) -> str:
    from safetensors.torch import save_file

    save_file({key: value.detach().contiguous().clone() for key, value in tensors.items()}, str(path))
    return str(path)


def export_flux_files(pipeline_folder: str | Path, out: str | Path) -> FluxFiles:
    """Write the four files: ``flux1-tiny``, ``ae``, ``clip_l`` and ``t5xxl`` (``.safetensors``)."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5EncoderModel

    folder, target = Path(pipeline_folder), Path(out)
    target.mkdir(parents=True, exist_ok=True)
    transformer = FluxTransformer2DModel.from_pretrained(folder / "transformer")
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    clip = CLIPTextModel.from_pretrained(folder / "text_encoder")
    t5 = T5EncoderModel.from_pretrained(folder / "text_encoder_2")
    clip_state = {
        key if key.startswith("text_model.") else f"text_model.{key}": value
        for key, value in clip.state_dict().items()
    }
    t5_state = {key: value for key, value in t5.state_dict().items() if key != "encoder.embed_tokens.weight"}
    return FluxFiles(
        transformer=_save(diffusers_to_bfl(transformer.state_dict()), target / "flux1-tiny.safetensors"),
        vae=_save(vae_to_ldm(vae.state_dict(), len(vae.config.up_block_types)), target / "ae.safetensors"),
        clip_l=_save(clip_state, target / "clip_l.safetensors"),
        t5=_save(t5_state, target / "t5xxl.safetensors"),
    )
