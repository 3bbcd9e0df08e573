"""FLUX.2 [klein] character LoRA (step 1.4 on a newer base): flow matching as ``Flux2KleinPipeline`` does it.

What differs from FLUX.1, each taken from the pipeline so training and inference agree:

- **text:** one Qwen3 encoder; the prompt goes through its chat template and the hidden states of
  layers 9, 18 and 27 are stacked per token (``encode_prompt``). Text position ids are 4-D
  ``(t, h, w, l)`` with ``l`` the token index (``_prepare_text_ids``);
- **latents:** the VAE mode is patchified 2x2 into channels and normalised by the VAE's own
  batch-norm statistics (``_encode_vae_image``); tokens are the patchified grid flattened
  (``_pack_latents``) with ids ``(0, row, col, 0)`` (``_prepare_latent_ids``);
- **schedule:** the pipeline shifts its sigmas with ``compute_empirical_mu(tokens, steps)`` (a
  fit that depends on the step count as well as the resolution) through the scheduler's own
  ``time_shift``; training draws logit-normal levels and applies that shift for the pipeline's
  default 50 steps, so it spends its steps where sampling does;
- **no guidance embedding:** klein passes ``guidance=None``; the timestep is the sigma (the
  transformer multiplies by 1000 itself). Base checkpoints sample with real CFG
  (``guidance_scale`` > 1), so a preview also needs the empty prompt's embedding, encoded while
  the text encoder is loaded and cached with the sample.
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

#: Double blocks: attention of both streams and both MLPs. Single blocks: the fused QKV+MLP input and
#: the fused attention+MLP output. Every linear layer of the blocks except modulation, as for FLUX.1.
FLUX2_TARGETS = (
    *JOINT_ATTENTION_TARGETS,
    "ff.linear_in",
    "ff.linear_out",
    "ff_context.linear_in",
    "ff_context.linear_out",
    "attn.to_qkv_mlp_proj",
    "attn.to_out",  # the single blocks' fused output (the double blocks' is ``attn.to_out.0``)
)
#: ``Flux2KleinPipeline.__call__``'s default ``num_inference_steps``, the step count the shift assumes.
SCHEDULE_STEPS = 50


class Flux2KleinAdapter(ModelAdapter):
    containers = ("transformer_blocks", "single_transformer_blocks")
    default_targets = FLUX2_TARGETS
    #: diffusers' Flux2 LoRA loader rejects ``.alpha`` keys in a diffusers-named file; alpha is
    #: folded into lora_B (``lora_io``), so loaders without alpha keys apply the same update.
    alpha_keys = False

    def shift_mu(self, image_tokens: int) -> float:
        from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

        return compute_empirical_mu(image_seq_len=image_tokens, num_steps=SCHEDULE_STEPS)

    @torch.no_grad()
    def encode_images(self, item: TrainItem, size: tuple[int, int]) -> Tensors:
        pixels = to_pixels(self.load_image(item.image), size).unsqueeze(0)
        latents = self.pipe._encode_vae_image(pixels.to(self.device, self.pipe.vae.dtype), generator=None)
        return {"latents": latents[0]}

    @torch.no_grad()
    def encode_text(self, item: TrainItem | None, caption: str) -> Tensors:
        embeds, _ = self.pipe.encode_prompt(
            prompt=caption, device=self.device, max_sequence_length=self.config.max_sequence_length
        )
        return {"embeds": embeds[0].to(self.weight_dtype)}

    def loss(self, model: torch.nn.Module, batch: list[Example], generator: torch.Generator) -> torch.Tensor:
        pipe = self.pipe
        latents = torch.stack([ex.images["latents"] for ex in batch]).to(self.device)
        embeds = torch.stack([ex.text["embeds"] for ex in batch]).to(self.device)
        count, _, height, width = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(self.device, latents.dtype)
        sigma = self.sigmas(count, height * width, generator).to(self.device)
        s = sigma.view(-1, 1, 1, 1).to(latents.dtype)
        noisy = pipe._pack_latents((1.0 - s) * latents + s * noise)
        prediction = model(
            hidden_states=noisy.to(self.weight_dtype),
            timestep=sigma.to(self.weight_dtype),
            guidance=None,
            encoder_hidden_states=embeds,
            txt_ids=pipe._prepare_text_ids(embeds).to(self.device),
            img_ids=pipe._prepare_latent_ids(latents).to(self.device),
            return_dict=False,
        )[0]
        return F.mse_loss(prediction.float(), pipe._pack_latents(noise - latents).float())

    def prepare_sample(self, spec: SampleSpec, text: Tensors | None = None) -> PreparedSample:
        if text is None:
            text = {**self.encode_text(None, spec.prompt),
                    "negative": self.encode_text(None, "")["embeds"]}
        return PreparedSample(spec, text)

    def sample(self, prepared: PreparedSample, size: tuple[int, int], seed: int) -> Image.Image:
        return self.run_pipe(size, seed, prompt_embeds=prepared.text["embeds"][None].to(self.device),
                             negative_prompt_embeds=prepared.text["negative"][None].to(self.device),
                             guidance_scale=self.config.sample_guidance_scale)
