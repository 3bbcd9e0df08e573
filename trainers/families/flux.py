"""FLUX.1-dev character LoRA (step 1.4): flow matching on the transformer, text from CLIP-L + T5.

FLUX.1-dev is guidance-distilled: its transformer takes a guidance value as an input embedding.
Training feeds a fixed ``guidance_scale`` (1.0 by default, as kohya's sd-scripts recommends for dev
LoRAs); sampling uses ``sample_guidance_scale`` (3.5, the usual inference value). Latents are the
VAE mean, shifted and scaled as the pipeline does, packed into 2x2 patches with the pipeline's own
helpers so that training and inference see identical token layouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..adapter import JOINT_ATTENTION_TARGETS, Example, ModelAdapter, PreparedSample, Tensors
from ..buckets import to_pixels

if TYPE_CHECKING:
    from PIL import Image

    from ..config import SampleSpec
    from ..datasets import TrainItem

#: Attention (both streams), the double blocks' MLPs and the single blocks' fused MLP/output layers:
#: every linear layer of the blocks except the modulation ones, like ai-toolkit and diffusers' script.
FLUX_TARGETS = (
    *JOINT_ATTENTION_TARGETS,
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
    "proj_mlp",
    "proj_out",
)


class FluxAdapter(ModelAdapter):
    containers = ("transformer_blocks", "single_transformer_blocks")
    default_targets = FLUX_TARGETS

    @torch.no_grad()
    def _latents(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latents = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode()
        return (latents - vae.config.shift_factor) * vae.config.scaling_factor

    def encode_images(self, item: TrainItem, size: tuple[int, int]) -> Tensors:
        pixels = to_pixels(self.load_image(item.image), size).unsqueeze(0)
        return {"latents": self._latents(pixels)[0]}

    @torch.no_grad()
    def encode_text(self, item: TrainItem | None, caption: str) -> Tensors:
        embeds, pooled, _ = self.pipe.encode_prompt(
            prompt=caption,
            prompt_2=None,
            device=self.device,
            max_sequence_length=self.config.max_sequence_length,
        )
        return {"embeds": embeds[0].to(self.weight_dtype), "pooled": pooled[0].to(self.weight_dtype)}

    def loss(self, model: torch.nn.Module, batch: list[Example], generator: torch.Generator) -> torch.Tensor:
        from diffusers import FluxPipeline

        latents = torch.stack([ex.images["latents"] for ex in batch]).to(self.device)
        embeds = torch.stack([ex.text["embeds"] for ex in batch]).to(self.device)
        pooled = torch.stack([ex.text["pooled"] for ex in batch]).to(self.device)
        count, channels, height, width = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(self.device, latents.dtype)
        sigma = self.sigmas(count, (height // 2) * (width // 2), generator).to(self.device)
        s = sigma.view(-1, 1, 1, 1).to(latents.dtype)
        noisy = (1.0 - s) * latents + s * noise
        packed = FluxPipeline._pack_latents(noisy, count, channels, height, width)
        image_ids = FluxPipeline._prepare_latent_image_ids(
            count, height // 2, width // 2, self.device, embeds.dtype
        )
        text_ids = torch.zeros(embeds.shape[1], 3, device=self.device, dtype=embeds.dtype)
        guidance = None
        if self.pipe.transformer.config.guidance_embeds:
            guidance = torch.full(
                (count,), self.config.guidance_scale, device=self.device, dtype=torch.float32
            )
        prediction = model(
            hidden_states=packed.to(self.weight_dtype),
            timestep=sigma.to(self.weight_dtype),
            guidance=guidance,
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=text_ids,
            img_ids=image_ids,
            return_dict=False,
        )[0]
        pixel_h, pixel_w = height * self.pipe.vae_scale_factor, width * self.pipe.vae_scale_factor
        prediction = FluxPipeline._unpack_latents(prediction, pixel_h, pixel_w, self.pipe.vae_scale_factor)
        return F.mse_loss(prediction.float(), (noise - latents).float())

    def prepare_sample(self, spec: SampleSpec, text: Tensors | None = None) -> PreparedSample:
        return PreparedSample(spec, text if text is not None else self.encode_text(None, spec.prompt))

    def sample(self, prepared: PreparedSample, size: tuple[int, int], seed: int) -> Image.Image:
        return self.run_pipe(size, seed, prompt_embeds=prepared.text["embeds"][None].to(self.device),
                             pooled_prompt_embeds=prepared.text["pooled"][None].to(self.device),
                             guidance_scale=self.config.sample_guidance_scale)
