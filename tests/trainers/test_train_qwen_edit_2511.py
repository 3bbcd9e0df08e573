"""Qwen-Image-Edit-2511 editor LoRA on the tiny model: condition tokens at timestep zero, as the pipeline runs it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

SIZE = (64, 64)


def _images(tmp_path):
    source = Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 60).convert("RGB")
    target = Image.fromarray(255 - np.asarray(source))
    paths = tmp_path / "source.png", tmp_path / "target.png"
    source.save(paths[0])
    target.save(paths[1])
    return paths


def _pack(latents):
    """(B, C, 1, H, W) -> (B, H/2 * W/2, 4C): Qwen-Image's 2x2 patch tokens, written out independently."""
    b, c, _, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def _pipeline_inputs(pipe, source, prompt, condition_pixels):
    """What QwenImageEditPlusPipeline.__call__ hands its transformer for one edit step."""
    from flenwheel.core.models.pipelines import qwen_edit_sizes

    seen = []
    hook = pipe.transformer.register_forward_pre_hook(lambda m, a, kw: seen.append(kw), with_kwargs=True)
    try:
        with qwen_edit_sizes(vae_pixels=SIZE[0] * SIZE[1], condition_pixels=condition_pixels):
            pipe(image=[source], prompt=prompt, width=SIZE[0], height=SIZE[1], num_inference_steps=1,
                 true_cfg_scale=1.0, output_type="latent")
    finally:
        hook.remove()
    return seen[0]


def _reference_loss(pipe, seen, target_path, seed):
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_shift

    pixels = pipe.image_processor.preprocess(Image.open(target_path).convert("RGB"), SIZE[1], SIZE[0])
    vae = pipe.vae
    with torch.no_grad():
        raw = vae.encode(pixels[:, :, None]).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    x0 = (raw - mean) / std
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=generator)
    tokens = (x0.shape[3] // 2) * (x0.shape[4] // 2)
    cfg = pipe.scheduler.config
    mu = calculate_shift(tokens, cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096),
                         cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15))
    sigma = pipe.scheduler.time_shift(mu, 1.0, torch.sigmoid(torch.randn(1, generator=generator))).float()
    condition = seen["hidden_states"][:, tokens:]
    with torch.no_grad():
        prediction = pipe.transformer(
            hidden_states=torch.cat([_pack((1 - sigma) * x0 + sigma * noise), condition], dim=1),
            timestep=sigma, encoder_hidden_states=seen["encoder_hidden_states"],
            encoder_hidden_states_mask=seen["encoder_hidden_states_mask"], img_shapes=seen["img_shapes"],
            return_dict=False,
        )[0][:, :tokens]
    return torch.mean((prediction - _pack(noise - x0)) ** 2).item(), condition


def test_one_step_loss_equals_the_pipeline_reference_with_condition_tokens_at_timestep_zero(
    qwen_2511_config, tmp_path
):
    from flenwheel.trainers.adapter import Example
    from flenwheel.trainers.datasets import TrainItem
    from flenwheel.trainers.families.qwen_edit import QwenEditAdapter

    config = qwen_2511_config()
    adapter = QwenEditAdapter(config, torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    transformer = adapter.load_transformer()
    assert transformer.config.zero_cond_t is True  # read from the model's own config
    source, target = _images(tmp_path)
    item = TrainItem(target, "invert the colours", "x", (source,), size=SIZE)
    example = Example(adapter.encode_images(item, SIZE), adapter.encode_text(item, item.caption), SIZE)
    loss = adapter.loss(transformer, [example], torch.Generator().manual_seed(3)).item()

    seen = _pipeline_inputs(adapter.pipe, Image.open(source).convert("RGB"), item.caption, config.condition_pixels)
    reference, condition = _reference_loss(adapter.pipe, seen, target, seed=3)
    assert loss == pytest.approx(reference, abs=1e-5, rel=0)
    assert torch.allclose(_pack(example.images["control_0"][None]), condition, atol=1e-6)
    assert torch.allclose(example.text["embeds"], seen["encoder_hidden_states"][0], atol=1e-6)

    transformer.zero_cond_t = False  # 2509 behaviour: the same inputs give another loss
    for block in transformer.transformer_blocks:
        block.zero_cond_t = False
    with_2509_rule = adapter.loss(transformer, [example], torch.Generator().manual_seed(3)).item()
    assert abs(with_2509_rule - loss) > 1e-5


def test_lora_file_in_diffusers_matches_the_training_adapter_at_full_and_half_strength(
    qwen_2511_config, train_quietly, tiny_qwen_edit_2511
):
    from diffusers import QwenImageEditPlusPipeline, QwenImageTransformer2DModel
    from peft import LoraConfig
    from safetensors.torch import load_file

    from flenwheel.trainers.families.qwen_edit import QWEN_EDIT_TARGETS
    from flenwheel.trainers.lora_io import read_metadata, resolve_targets

    config = qwen_2511_config(lora_alpha=2.0)
    done, _ = train_quietly(config)
    meta = read_metadata(done["lora_path"])
    assert meta["flenwheel.trainer"] == "qwen-edit-2511"
    trained = QwenImageTransformer2DModel.from_pretrained(tiny_qwen_edit_2511, subfolder="transformer")
    targets = resolve_targets(trained, list(QWEN_EDIT_TARGETS), ("transformer_blocks",), "qwen-edit-2511")
    trained.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=2.0, target_modules=targets))
    state = load_file(str(config.output_dir / "checkpoints" / "step_000006" / "trainable.safetensors"))
    assert not trained.load_state_dict(state, strict=False).unexpected_keys
    trained.eval()
    pipe = QwenImageEditPlusPipeline.from_pretrained(tiny_qwen_edit_2511)
    pipe.load_lora_weights(done["lora_path"], adapter_name="editor")
    gen = torch.Generator().manual_seed(0)
    inputs = {
        "hidden_states": torch.randn(1, 32, 16, generator=gen),
        "encoder_hidden_states": torch.randn(1, 7, 16, generator=gen),
        "timestep": torch.tensor([0.4]),
        "img_shapes": [[(1, 4, 4), (1, 4, 4)]],
        "return_dict": False,
    }
    with torch.no_grad():
        pipe.set_adapters(["editor"], [0.0])
        base = pipe.transformer(**inputs)[0]
        for strength in (1.0, 0.5):
            pipe.set_adapters(["editor"], [strength])
            trained.set_adapters(["default"], [strength])
            loaded, reference = pipe.transformer(**inputs)[0], trained(**inputs)[0]
            assert (loaded - base).abs().max() > 1e-5
            assert torch.allclose(loaded, reference, atol=1e-5), (strength, (loaded - reference).abs().max())


def test_trains_end_to_end_through_the_trainer_module(qwen_2511_config, config_file, child_env):
    config = qwen_2511_config(max_train_steps=4, save_every=2)
    path = config_file(config)
    result = subprocess.run(
        [sys.executable, "-m", "flenwheel.trainers", "qwen-edit-2511", "--config", str(path)],
        env=child_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = config.output_dir
    assert len(list(out.glob("*.safetensors"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000002", "step_000004"]
