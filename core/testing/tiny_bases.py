"""Tiny random-weight FLUX.2 [klein], Z-Image and Qwen-Image-Edit-2511 pipelines, built offline.

Same idea as ``tiny.py``: the real diffusers architectures at toy sizes, saved in the diffusers
folder layout and loaded back by the same ``from_pretrained`` code as real weights.

FLUX.2 [klein] specifics that the toy keeps, because training and generation depend on them:

- the text encoder is a Qwen3 causal LM whose hidden states 9, 18 and 27 are stacked into the
  prompt embedding, so the toy has 28 layers (narrow ones) and the transformer's
  ``joint_attention_dim`` is three times the text width;
- the tokenizer carries a Qwen3-style chat template (``enable_thinking`` honoured), because the
  pipeline wraps every prompt in it before tokenising;
- the VAE's batch-norm statistics are set to non-trivial values, so a test notices when latents
  are not normalised the way ``Flux2KleinPipeline._encode_vae_image`` does;
- the scheduler uses dynamic (exponential) shifting like the released model.

Z-Image's toy keeps its three block groups (noise refiner, context refiner, main layers) and the
FLUX VAE's non-trivial ``shift_factor`` / ``scaling_factor``, so a test notices latents scaled the
wrong way; its text encoder is a plain ``Qwen3Model`` whose second-to-last hidden state is the prompt
embedding, and its scheduler the released models' static ``shift: 3.0`` without dynamic shifting.

The 2511 editor is the 2509 toy with ``zero_cond_t: true`` in its transformer config: that flag
alone is what distinguishes the two in diffusers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Qwen3's chat template reduced to what ``Flux2KleinPipeline`` uses: one user turn, the generation
#: prompt, and the empty think block that ``enable_thinking=False`` adds.
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
#: The hidden-state layers ``Flux2KleinPipeline`` stacks (its ``text_encoder_out_layers`` default).
KLEIN_TEXT_LAYERS = (9, 18, 27)
QWEN3_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")


def _qwen3_tokenizer() -> Any:
    from transformers import Qwen2Tokenizer

    from .tiny import _byte_symbols

    vocab = {symbol: index for index, symbol in enumerate(_byte_symbols())}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], model_max_length=1024, pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN3_SPECIAL_TOKENS)})
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


def build_flux2_klein(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny Flux2KleinPipeline (transformer, Flux2 VAE, Qwen3 text encoder, tokenizer, scheduler)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    tokenizer = _qwen3_tokenizer()
    text_width, latent_channels = 16, 4
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=32,
        num_hidden_layers=max(KLEIN_TEXT_LAYERS) + 1, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
        max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    ))
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=latent_channels * 4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=text_width * len(KLEIN_TEXT_LAYERS),
        timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False,
    )
    vae = AutoencoderKLFlux2(
        in_channels=3, out_channels=3, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, latent_channels=latent_channels, norm_num_groups=4, sample_size=32,
        use_quant_conv=True, use_post_quant_conv=True,
    )
    channels = vae.bn.num_features
    vae.bn.running_mean.copy_(torch.linspace(-0.3, 0.3, channels))
    vae.bn.running_var.copy_(torch.linspace(0.5, 2.0, channels))
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, time_shift_type="exponential"
    )
    pipe = Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        is_distilled=False,
    )
    pipe.save_pretrained(folder)
    return Path(folder)


def build_z_image(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny ZImagePipeline (transformer, FLUX VAE, Qwen3 text encoder, tokenizer, scheduler)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed)
    tokenizer = _qwen3_tokenizer()
    text_width, latent_channels = 16, 4
    text_encoder = Qwen3Model(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=32, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    ))
    transformer = ZImageTransformer2DModel(
        in_channels=latent_channels, dim=96, n_layers=2, n_refiner_layers=1, n_heads=6, n_kv_heads=6,
        cap_feat_dim=text_width, axes_dims=[4, 6, 6], axes_lens=[1024, 512, 512],
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, latent_channels=latent_channels, norm_num_groups=4, sample_size=32,
        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)
    pipe = ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)
    pipe.save_pretrained(folder)
    return Path(folder)


def build_qwen_edit_2511(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny 2511-style QwenImageEditPlusPipeline: the 2509 toy with ``zero_cond_t: true``."""
    from .tiny import build_qwen_edit

    return build_qwen_edit(folder, seed=seed, zero_cond_t=True)


#: diffusers -> BFL names of FLUX.2's non-block layers (the inverse of diffusers' single-file converter).
_FLUX2_TOP = {
    "x_embedder.": "img_in.",
    "context_embedder.": "txt_in.",
    "time_guidance_embed.timestep_embedder.linear_1.": "time_in.in_layer.",
    "time_guidance_embed.timestep_embedder.linear_2.": "time_in.out_layer.",
    "double_stream_modulation_img.linear.": "double_stream_modulation_img.lin.",
    "double_stream_modulation_txt.linear.": "double_stream_modulation_txt.lin.",
    "single_stream_modulation.linear.": "single_stream_modulation.lin.",
    "proj_out.": "final_layer.linear.",
}
_FLUX2_DOUBLE = {
    "attn.norm_q.weight": "img_attn.norm.query_norm.scale",
    "attn.norm_k.weight": "img_attn.norm.key_norm.scale",
    "attn.norm_added_q.weight": "txt_attn.norm.query_norm.scale",
    "attn.norm_added_k.weight": "txt_attn.norm.key_norm.scale",
    "attn.to_out.0.weight": "img_attn.proj.weight",
    "attn.to_add_out.weight": "txt_attn.proj.weight",
    "ff.linear_in.weight": "img_mlp.0.weight",
    "ff.linear_out.weight": "img_mlp.2.weight",
    "ff_context.linear_in.weight": "txt_mlp.0.weight",
    "ff_context.linear_out.weight": "txt_mlp.2.weight",
}
_FLUX2_SINGLE = {
    "attn.to_qkv_mlp_proj.weight": "linear1.weight",
    "attn.to_out.weight": "linear2.weight",
    "attn.norm_q.weight": "norm.query_norm.scale",
    "attn.norm_k.weight": "norm.key_norm.scale",
}


def flux2_to_bfl(state: dict[str, Any]) -> dict[str, Any]:
    """A diffusers Flux2Transformer2DModel state dict in BFL's single-file layout (``flux-2-klein-4b``):
    q/k/v fused per stream, RMSNorm weights as ``scale``, the final modulation as (shift, scale)."""
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "transformer_blocks":
            rest = ".".join(parts[2:])
            if rest.startswith(("attn.to_q.", "attn.to_k.", "attn.to_v.", "attn.add_q_proj.", "attn.add_k_proj.",
                                "attn.add_v_proj.")):
                continue
            out[f"double_blocks.{parts[1]}.{_FLUX2_DOUBLE[rest]}"] = value
        elif parts[0] == "single_transformer_blocks":
            out[f"single_blocks.{parts[1]}.{_FLUX2_SINGLE['.'.join(parts[2:])]}"] = value
        elif key.startswith("norm_out.linear."):
            scale, shift = value.chunk(2, dim=0)
            out["final_layer.adaLN_modulation.1." + parts[-1]] = torch.cat([shift, scale], dim=0)
        else:
            prefix = next(p for p in _FLUX2_TOP if key.startswith(p))
            out[_FLUX2_TOP[prefix] + key.removeprefix(prefix)] = value
    blocks = {key.split(".")[1] for key in state if key.startswith("transformer_blocks.")}
    for index in blocks:
        for stream, names in (("img", ("to_q", "to_k", "to_v")), ("txt", ("add_q_proj", "add_k_proj", "add_v_proj"))):
            out[f"double_blocks.{index}.{stream}_attn.qkv.weight"] = torch.cat(
                [state[f"transformer_blocks.{index}.attn.{name}.weight"] for name in names], dim=0
            )
    return {key: value.contiguous() for key, value in out.items()}


#: diffusers -> ComfyUI names of Z-Image's renamed layers (the inverse of diffusers' single-file converter).
_Z_IMAGE_RENAMES = (
    ("all_final_layer.2-1.", "final_layer."),
    ("all_x_embedder.2-1.", "x_embedder."),
    (".attention.to_out.0.", ".attention.out."),
    (".attention.norm_q.", ".attention.q_norm."),
    (".attention.norm_k.", ".attention.k_norm."),
)


def z_image_to_comfy(state: dict[str, Any]) -> dict[str, Any]:
    """A diffusers ZImageTransformer2DModel state dict in ComfyUI's layout (``z_image_turbo_bf16``):
    each block's q/k/v fused into ``attention.qkv``, ``out``/``q_norm``/``k_norm`` renamed, and the
    patch-size-keyed embedder and final layer without their ``2-1`` key, as ComfyUI's
    ``z_image_to_diffusers`` table maps them."""
    import torch

    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.endswith((".attention.to_q.weight", ".attention.to_k.weight", ".attention.to_v.weight")):
            continue
        for old, new in _Z_IMAGE_RENAMES:
            key = key.replace(old, new)
        out[key] = value
    for key in state:
        if key.endswith(".attention.to_q.weight"):
            prefix = key.removesuffix("to_q.weight")
            out[prefix + "qkv.weight"] = torch.cat([state[prefix + f"to_{p}.weight"] for p in "qkv"], dim=0)
    return {key: value.contiguous() for key, value in out.items()}
