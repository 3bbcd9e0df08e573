"""Z-Image character LoRA on the tiny model: the loss is the pipeline's, and the file trains end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

SIZE = (64, 48)


def _capture_transformer_inputs(pipe, **call):
    """Run ``pipe(**call)`` for one step and return the positional arguments its transformer received."""
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(lambda module, args: seen.append(args))
    try:
        pipe(num_inference_steps=1, output_type="latent", **call)
    finally:
        handle.remove()
    return seen[0]


def _adapter(config):
    from flenwheel.trainers.families.z_image import ZImageAdapter

    adapter = ZImageAdapter(config, torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    adapter.load_transformer()
    return adapter


def _scheduler_sigma(scheduler, u: torch.Tensor) -> torch.Tensor:
    """The scheduler's own shift of the level ``u``: what ``set_timesteps(sigmas=...)`` makes of it."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    fresh = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config)
    fresh.set_timesteps(sigmas=[u.item()], mu=0.0)
    return fresh.sigmas[:1].float()


def test_one_step_loss_equals_an_independent_reference_from_pipeline_pieces(z_image_config, tmp_path):
    """Latents (VAE mode, shifted and scaled as the pipeline's decode inverts), the caption embedding
    the pipeline computes, the level shifted by the scheduler's own static shift, the transformer fed
    ``1 - sigma`` as ZImagePipeline feeds it, and the negated output compared with ``noise - x0``."""
    from flenwheel.trainers.adapter import Example
    from flenwheel.trainers.datasets import TrainItem

    config = z_image_config()
    adapter = _adapter(config)
    pipe = adapter.pipe
    assert pipe.scheduler.config.use_dynamic_shifting is False and pipe.scheduler.config.shift == 3.0
    path = tmp_path / "face.png"
    Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 60).convert("RGB").save(path)
    item = TrainItem(path, "photo of ohwx_char", "x", size=SIZE)
    example = Example(adapter.encode_images(item, SIZE), adapter.encode_text(item, item.caption), SIZE)
    loss = adapter.loss(pipe.transformer, [example], torch.Generator().manual_seed(7)).item()

    latents, _, captions = _capture_transformer_inputs(
        pipe, prompt=item.caption, height=SIZE[1], width=SIZE[0], guidance_scale=0.0,
        max_sequence_length=config.max_sequence_length)
    pixels = pipe.image_processor.preprocess(Image.open(path).convert("RGB"), height=SIZE[1], width=SIZE[0])
    with torch.no_grad():
        raw = pipe.vae.encode(pixels).latent_dist.mode()
    x0 = (raw - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(x0.shape, generator=generator)
    sigma = _scheduler_sigma(pipe.scheduler, torch.sigmoid(torch.randn(1, generator=generator)))
    timestep = (1000 - sigma * 1000) / 1000  # ZImagePipeline's (1000 - t) / 1000
    noisy = (1 - sigma) * x0 + sigma * noise
    assert latents[0].shape == noisy[0].unsqueeze(1).shape
    with torch.no_grad():
        out = pipe.transformer([noisy[0].unsqueeze(1)], timestep, captions, return_dict=False)[0]
    velocity = -torch.stack(out).squeeze(2)  # the pipeline negates the output before the Euler step
    reference = torch.mean((velocity - (noise - x0)) ** 2).item()
    assert loss == pytest.approx(reference, abs=1e-5, rel=0)
    assert torch.equal(example.text["embeds"], captions[0])


def test_lora_file_in_diffusers_matches_the_training_adapter_at_full_and_half_strength(
    z_image_config, train_quietly, tiny_z_image
):
    from diffusers import ZImagePipeline, ZImageTransformer2DModel
    from peft import LoraConfig
    from safetensors.torch import load_file

    from flenwheel.trainers.families.z_image import Z_IMAGE_TARGETS, ZImageAdapter
    from flenwheel.trainers.lora_io import read_metadata, resolve_targets

    config = z_image_config(lora_alpha=8.0)
    done, _ = train_quietly(config)
    meta = read_metadata(done["lora_path"])
    assert meta["flenwheel.trainer"] == "z-image" and meta["flenwheel.base_model"] == str(tiny_z_image)
    tensors = load_file(done["lora_path"])
    assert not any(key.endswith(".alpha") for key in tensors)
    assert {key.split(".")[1] for key in tensors} == {"noise_refiner", "context_refiner", "layers"}

    trained = ZImageTransformer2DModel.from_pretrained(tiny_z_image, subfolder="transformer")
    targets = resolve_targets(trained, list(Z_IMAGE_TARGETS), ZImageAdapter.containers, "z-image")
    trained.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.alpha, target_modules=targets))
    state = load_file(str(config.output_dir / "checkpoints" / "step_000006" / "trainable.safetensors"))
    assert not trained.load_state_dict(state, strict=False).unexpected_keys
    trained.eval()

    pipe = ZImagePipeline.from_pretrained(tiny_z_image)
    pipe.load_lora_weights(done["lora_path"], adapter_name="char")
    gen = torch.Generator().manual_seed(0)
    inputs = ([torch.randn(4, 1, 8, 8, generator=gen)], torch.tensor([0.3]), [torch.randn(5, 16, generator=gen)])
    with torch.no_grad():
        pipe.set_adapters(["char"], [0.0])
        base = pipe.transformer(*inputs, return_dict=False)[0][0]
        for strength in (1.0, 0.5):
            pipe.set_adapters(["char"], [strength])
            trained.set_adapters(["default"], [strength])
            loaded = pipe.transformer(*inputs, return_dict=False)[0][0]
            reference = trained(*inputs, return_dict=False)[0][0]
            assert (loaded - base).abs().max() > 1e-4
            assert torch.allclose(loaded, reference, atol=1e-5), (strength, (loaded - reference).abs().max())


def test_trains_end_to_end_through_the_trainer_module(z_image_config, config_file, child_env):
    config = z_image_config(max_train_steps=4, save_every=2, sample_every=4, sample_prompts=["[trigger] smiling"],
                            batch_size=2)
    path = config_file(config)
    result = subprocess.run(
        [sys.executable, "-m", "flenwheel.trainers", "z-image", "--config", str(path)],
        env=child_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = config.output_dir
    assert len(list(out.glob("*.safetensors"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000002", "step_000004"]
    assert [p.name for p in (out / "samples").iterdir()] == ["step_000004_00.png"]
    assert '"event": "done"' in result.stdout or '"event":"done"' in result.stdout
