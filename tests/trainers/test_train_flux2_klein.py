"""FLUX.2 [klein] character LoRA on the tiny model: the loss is the pipeline's, and the file loads in diffusers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image

SIZE = (64, 64)


def _capture_transformer_inputs(pipe, **call):
    """Run ``pipe(**call)`` for one step and return the keyword arguments its transformer received."""
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs), with_kwargs=True
    )
    try:
        pipe(num_inference_steps=1, output_type="latent", **call)
    finally:
        handle.remove()
    return seen[0]


def _adapter(config):
    from flenwheel.trainers.families.flux2_klein import Flux2KleinAdapter

    adapter = Flux2KleinAdapter(config, torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    adapter.load_transformer()
    return adapter


def test_one_step_loss_equals_an_independent_reference_from_pipeline_pieces(klein_config, tmp_path):
    """Latents (patchify + batch norm), text embeddings and ids as Flux2KleinPipeline builds them,
    the sigma shifted by the scheduler's own time_shift with the pipeline's empirical mu, target noise - x0."""
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

    from flenwheel.trainers.adapter import Example
    from flenwheel.trainers.datasets import TrainItem

    config = klein_config()
    adapter = _adapter(config)
    pipe = adapter.pipe
    path = tmp_path / "face.png"
    Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 60).convert("RGB").save(path)
    item = TrainItem(path, "photo of ohwx_char", "x", size=SIZE)
    example = Example(adapter.encode_images(item, SIZE), adapter.encode_text(item, item.caption), SIZE)
    loss = adapter.loss(pipe.transformer, [example], torch.Generator().manual_seed(7)).item()

    seen = _capture_transformer_inputs(pipe, prompt=item.caption, height=SIZE[1], width=SIZE[0],
                                       guidance_scale=1.0, max_sequence_length=config.max_sequence_length)
    pixels = pipe.image_processor.preprocess(Image.open(path).convert("RGB"), height=SIZE[1], width=SIZE[0])
    with torch.no_grad():
        raw = pipe.vae.encode(pixels).latent_dist.mode()
    b, c, h, w = raw.shape
    patched = raw.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)
    bn = pipe.vae.bn
    x0 = (patched - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(x0.shape, generator=generator)
    tokens = x0.shape[2] * x0.shape[3]
    u = torch.sigmoid(torch.randn(1, generator=generator))
    sigma = pipe.scheduler.time_shift(compute_empirical_mu(tokens, 50), 1.0, u).float()

    def tokens_of(latents):
        return latents.flatten(2).transpose(1, 2)

    noisy = tokens_of((1 - sigma) * x0 + sigma * noise)
    assert seen["hidden_states"].shape == noisy.shape
    with torch.no_grad():
        prediction = pipe.transformer(
            hidden_states=noisy, timestep=sigma, guidance=None, encoder_hidden_states=seen["encoder_hidden_states"],
            txt_ids=seen["txt_ids"], img_ids=seen["img_ids"], return_dict=False,
        )[0]
    reference = torch.mean((prediction - tokens_of(noise - x0)) ** 2).item()
    assert loss == pytest.approx(reference, abs=1e-5, rel=0)
    assert torch.equal(example.text["embeds"], seen["encoder_hidden_states"][0])


def _transformer_inputs(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cfg = model.config
    return {
        "hidden_states": torch.randn(1, 16, cfg.in_channels, generator=gen),
        "encoder_hidden_states": torch.randn(1, 8, cfg.joint_attention_dim, generator=gen),
        "timestep": torch.tensor([0.5]),
        "img_ids": torch.cartesian_prod(torch.arange(1), torch.arange(4), torch.arange(4), torch.arange(1)),
        "txt_ids": torch.cartesian_prod(torch.arange(1), torch.arange(1), torch.arange(1), torch.arange(8)),
        "return_dict": False,
    }


def test_lora_file_in_diffusers_matches_the_training_adapter_at_full_and_half_strength(
    klein_config, train_quietly, tiny_flux2_klein
):
    from diffusers import Flux2KleinPipeline, Flux2Transformer2DModel
    from peft import LoraConfig
    from safetensors.torch import load_file

    from flenwheel.trainers.families.flux2_klein import FLUX2_TARGETS, Flux2KleinAdapter
    from flenwheel.trainers.lora_io import read_metadata, resolve_targets

    config = klein_config(lora_alpha=8.0)
    done, _ = train_quietly(config)
    meta = read_metadata(done["lora_path"])
    assert meta["flenwheel.trainer"] == "flux2-klein"
    assert meta["flenwheel.base_model"] == str(tiny_flux2_klein)

    trained = Flux2Transformer2DModel.from_pretrained(tiny_flux2_klein, subfolder="transformer")
    targets = resolve_targets(trained, list(FLUX2_TARGETS), Flux2KleinAdapter.containers, "flux2-klein")
    assert any(t.startswith("single_transformer_blocks.") and t.endswith("attn.to_out") for t in targets)
    trained.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.alpha, target_modules=targets))
    state = load_file(str(config.output_dir / "checkpoints" / "step_000006" / "trainable.safetensors"))
    assert not trained.load_state_dict(state, strict=False).unexpected_keys
    trained.eval()

    pipe = Flux2KleinPipeline.from_pretrained(tiny_flux2_klein)
    pipe.load_lora_weights(done["lora_path"], adapter_name="char")
    inputs = _transformer_inputs(pipe.transformer)
    with torch.no_grad():
        pipe.set_adapters(["char"], [0.0])
        base = pipe.transformer(**inputs)[0]
        for strength in (1.0, 0.5):
            pipe.set_adapters(["char"], [strength])
            trained.set_adapters(["default"], [strength])
            loaded, reference = pipe.transformer(**inputs)[0], trained(**inputs)[0]
            assert (loaded - base).abs().max() > 1e-4
            assert torch.allclose(loaded, reference, atol=1e-5), (strength, (loaded - reference).abs().max())


def test_trains_end_to_end_through_the_trainer_module(klein_config, config_file, child_env):
    config = klein_config(max_train_steps=4, save_every=2, sample_every=4, sample_prompts=["[trigger] smiling"])
    path = config_file(config)
    result = subprocess.run(
        [sys.executable, "-m", "flenwheel.trainers", "flux2-klein", "--config", str(path)],
        env=child_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = config.output_dir
    assert len(list(out.glob("*.safetensors"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000002", "step_000004"]
    assert [p.name for p in (out / "samples").iterdir()] == ["step_000004_00.png"]
    assert '"event": "done"' in result.stdout or '"event":"done"' in result.stdout
