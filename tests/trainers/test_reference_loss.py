"""One training step's loss, recomputed by an independent implementation from diffusers' own pieces.

Tiny random models cannot show a numerical bug (a wrong time shift, a swapped packing, a target of
x0 - noise instead of noise - x0): training still runs and the loss still falls. So each trainer
family's loss is rebuilt here the way diffusers' pipelines build their inputs: pixels through
``VaeImageProcessor``, latents through the VAE as the pipeline scales them, the noise level through
the scheduler's own ``time_shift`` with the pipeline's ``calculate_shift``, packing and position ids
from the pipeline's ``prepare_latents``, and the flow-matching velocity ``noise - x0`` as the target.
The random draws follow the trainer's documented order (noise first, then the logit-normal draw),
so both sides see the same numbers; in fp32 the two losses must agree to 1e-5.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from flenwheel.trainers.adapter import Example
from flenwheel.trainers.loop import make_adapter

TOLERANCE = 1e-5


def _reference_sigma(scheduler, generator: torch.Generator, count: int, image_tokens: int, shift) -> torch.Tensor:
    """The logit-normal draw, shifted by the scheduler for this token count (as inference shifts it)."""
    config = scheduler.config
    mu = shift(image_tokens, config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096),
               config.get("base_shift", 0.5), config.get("max_shift", 1.15))
    t = torch.sigmoid(torch.randn(count, generator=generator))
    return scheduler.time_shift(mu, 1.0, t).clamp(1e-4, 1.0 - 1e-4)


def _pictures(sizes: list[tuple[int, int]]) -> list[Image.Image]:
    generator = torch.Generator().manual_seed(5)
    return [Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=generator, dtype=torch.uint8).numpy())
            for w, h in sizes]


@pytest.fixture
def flux_adapter(flux_config):
    adapter = make_adapter(flux_config(timestep_sampling="shift"), torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    return adapter, adapter.load_transformer()


def test_flux_loss_equals_an_independent_flow_matching_loss(flux_adapter, tmp_path):
    from diffusers import FluxPipeline
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    from flenwheel.trainers.datasets import TrainItem

    adapter, transformer = flux_adapter
    pipe: FluxPipeline = adapter.pipe
    size, captions = (64, 48), ["photo of ohwx_char, smiling", "ohwx_char in a park"]
    items = []
    for index, image in enumerate(_pictures([size, size])):
        image.save(tmp_path / f"{index}.png")
        items.append(TrainItem(tmp_path / f"{index}.png", captions[index], str(index), size=size))
    batch = [Example(adapter.encode_images(item, size), adapter.encode_text(item, item.caption), size)
             for item in items]
    with torch.no_grad():
        ours = adapter.loss(transformer, batch, torch.Generator().manual_seed(11))

    # The reference: FluxPipeline's own preprocessing, scaling, ids and call convention.
    pixels = torch.cat([pipe.image_processor.preprocess(Image.open(item.image), size[1], size[0]) for item in items])
    with torch.no_grad():
        x0 = pipe.vae.encode(pixels).latent_dist.mode()
    x0 = (x0 - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    embeds, pooled, text_ids = pipe.encode_prompt(prompt=captions, prompt_2=None, device="cpu",
                                                  max_sequence_length=adapter.config.max_sequence_length)
    count, channels, height, width = x0.shape
    generator = torch.Generator().manual_seed(11)
    noise = torch.randn(x0.shape, generator=generator)
    sigma = _reference_sigma(pipe.scheduler, generator, count, (height // 2) * (width // 2), calculate_shift)
    s = sigma.view(-1, 1, 1, 1)
    noisy = FluxPipeline._pack_latents((1 - s) * x0 + s * noise, count, channels, height, width)
    packed, image_ids = pipe.prepare_latents(count, channels, size[1], size[0], torch.float32, "cpu", None,
                                             latents=noisy)
    guidance = torch.full([1], adapter.config.guidance_scale, dtype=torch.float32).expand(count)
    with torch.no_grad():
        prediction = transformer(hidden_states=packed, timestep=sigma, guidance=guidance,
                                 pooled_projections=pooled, encoder_hidden_states=embeds, txt_ids=text_ids,
                                 img_ids=image_ids, return_dict=False)[0]
    target = FluxPipeline._pack_latents(noise - x0, count, channels, height, width)
    reference = torch.mean((prediction - target) ** 2)
    assert abs(float(ours) - float(reference)) <= TOLERANCE, (float(ours), float(reference))
    assert float(reference) > 0.1  # a real loss, not two zeros


@pytest.fixture
def qwen_adapter(qwen_config):
    adapter = make_adapter(qwen_config(timestep_sampling="shift"), torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    return adapter, adapter.load_transformer()


def test_qwen_edit_loss_equals_an_independent_flow_matching_loss(qwen_adapter, tmp_path):
    """Target tokens first, the source's latent tokens after them, the loss on the target tokens only."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_shift

    from flenwheel.trainers.datasets import TrainItem

    adapter, transformer = qwen_adapter
    pipe = adapter.pipe
    size = (64, 48)
    target_image, source_image = _pictures([size, size])
    target_image.save(tmp_path / "target.png")
    source_image.save(tmp_path / "source.png")
    item = TrainItem(tmp_path / "target.png", "make it evening", "t", (tmp_path / "source.png",), size=size)
    batch = [Example(adapter.encode_images(item, size), adapter.encode_text(item, item.caption), size)]
    with torch.no_grad():
        ours = adapter.loss(transformer, batch, torch.Generator().manual_seed(3))

    def vae_input(image: Image.Image) -> torch.Tensor:  # as QwenImageEditPlusPipeline.__call__ prepares it
        return pipe.image_processor.preprocess(image, size[1], size[0]).unsqueeze(2)

    with torch.no_grad():
        x0 = pipe._encode_vae_image(vae_input(target_image), generator=None)
    count, channels, _, height, width = x0.shape
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(x0.shape, generator=generator)
    tokens = (height // 2) * (width // 2)
    sigma = _reference_sigma(pipe.scheduler, generator, count, tokens, calculate_shift)
    s = sigma.view(-1, 1, 1, 1, 1)
    noisy = pipe._pack_latents((1 - s) * x0 + s * noise, count, channels, height, width)
    with torch.no_grad():
        latents, source_tokens = pipe.prepare_latents([vae_input(source_image)], count, channels, size[1],
                                                      size[0], torch.float32, "cpu", None, latents=noisy)
    scale = pipe.vae_scale_factor
    img_shapes = [[(1, size[1] // scale // 2, size[0] // scale // 2)] * 2] * count
    embeds = batch[0].text["embeds"][None]
    with torch.no_grad():
        prediction = transformer(hidden_states=torch.cat([latents, source_tokens], dim=1), timestep=sigma,
                                 encoder_hidden_states=embeds, encoder_hidden_states_mask=None,
                                 img_shapes=img_shapes, return_dict=False)[0][:, : latents.size(1)]
    target = pipe._pack_latents(noise - x0, count, channels, height, width)
    reference = torch.mean((prediction - target) ** 2)
    assert abs(float(ours) - float(reference)) <= TOLERANCE, (float(ours), float(reference))
    assert float(reference) > 0.01
