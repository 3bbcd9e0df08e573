"""Tiny, randomly initialised FLUX and Qwen-Image-Edit-2509 pipelines, built offline (newer bases: ``tiny_bases``).

Model weights cannot be downloaded in tests or CI, yet every model path must be exercised the way
real weights are. So we build the real architectures at toy sizes from configs, save them in the
diffusers folder layout, and load them back through the same ``from_pretrained`` code that real
FLUX.1-dev and Qwen-Image-Edit-2509 folders go through. Tokenizers are made with the
``tokenizers`` library: byte-level vocabularies with no merges, which every tokenizer class
accepts (see ``../shared/notes/tiny-models.md`` for the measured configs and pitfalls).

Outputs are noise: these models check plumbing, shapes, LoRA keys and resumption, never quality.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

from ..models.registry import family, family_names, resolve

TINY_FORMAT = 1  # bump when the configs change, so cached builds are rebuilt

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def _byte_symbols() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    symbols = _byte_symbols()
    for suffix in ("", "</w>"):
        for symbol in symbols:
            vocab[symbol + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _t5_tokenizer() -> Any:
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for char in string.printable.strip():
        vocab += [(char, -3.0), ("\u2581" + char, -3.0)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def _qwen_tokenizer() -> Any:
    from transformers import Qwen2Tokenizer

    vocab = {symbol: index for index, symbol in enumerate(_byte_symbols())}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], model_max_length=1024)
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    return tokenizer


def build_flux(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny FluxPipeline (transformer, VAE, CLIP-L, T5, tokenizers, scheduler) to ``folder``."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    clip_tokenizer, t5_tokenizer = _clip_tokenizer(), _t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,
    )
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(clip_tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, projection_dim=32, max_position_embeddings=77,
        bos_token_id=0, eos_token_id=clip_tokenizer.eos_token_id, pad_token_id=clip_tokenizer.pad_token_id,
    ))
    t5 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0,
    ))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=32,
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)
    pipe = FluxPipeline(
        scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=clip_tokenizer,
        text_encoder_2=t5, tokenizer_2=t5_tokenizer, transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return Path(folder)


def _qwen_processor(tokenizer: Any) -> Any:
    """Qwen2VLProcessor with a small image processor; without torchvision, an image-only variant."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor

    from ..data.availability import is_torchvision_available
    from ..models.qwen_processor import ImageOnlyQwen2VLProcessor

    image_processor = Qwen2VLImageProcessor(
        min_pixels=784, max_pixels=12544, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    if not is_torchvision_available():
        return ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer)
    from transformers import Qwen2VLVideoProcessor

    video_processor = Qwen2VLVideoProcessor(min_pixels=784, max_pixels=12544, patch_size=14, merge_size=2,
                                            temporal_patch_size=2)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor)


def build_qwen_edit(folder: str | Path, seed: int = 0, zero_cond_t: bool = False) -> Path:
    """Save a tiny QwenImageEditPlusPipeline (Qwen-Image-Edit-2509 layout; 2511 with ``zero_cond_t``)."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    tokenizer = _qwen_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIAL_TOKENS}
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
        num_attention_heads=3, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
        zero_cond_t=zero_cond_t,
    )
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6, z_dim=z_dim, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={
            "depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
            "fullatt_block_indexes": [1],
        },
        hidden_size=16,
        vocab_size=len(tokenizer),
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        vision_token_id=ids["<|image_pad|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    pipe = QwenImageEditPlusPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        processor=_qwen_processor(tokenizer), transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return Path(folder)



def build(kind: str, folder: str | Path, seed: int = 0) -> Path:
    """Build one tiny pipeline into ``folder`` atomically: a half-built folder is never left behind.

    ``kind`` is a model family; its registry entry names the builder (``tiny_builder``).
    """
    kind = family(kind).name
    builder = resolve(family(kind).tiny_builder)
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        builder(staging, seed=seed)
        (staging / "flenwheel_tiny.json").write_text(
            json.dumps({"kind": kind, "format": TINY_FORMAT, "seed": seed}), encoding="utf-8"
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def is_built(folder: Path, kind: str) -> bool:
    marker = folder / "flenwheel_tiny.json"
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return info.get("kind") == family(kind).name and info.get("format") == TINY_FORMAT


def ensure(kind: str, cache_dir: str | Path) -> Path:
    """The cached tiny model of ``kind`` under ``cache_dir``, built on first use."""
    folder = Path(cache_dir) / f"tiny-{kind}"
    if not is_built(folder, kind):
        build(kind, folder)
    return folder


def build_all(folder: str | Path) -> dict[str, Path]:
    """Build every tiny pipeline under ``folder`` (``flenwheel tiny build DIR``)."""
    return {kind: build(kind, Path(folder) / f"tiny-{kind}") for kind in family_names()}
