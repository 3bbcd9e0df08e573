"""Z-Image character LoRA (step 1.4 on Tongyi-MAI's base): flow matching as ``ZImagePipeline`` runs it.

What differs from the FLUX families, each taken from the pipeline so training and inference agree:

- **text:** one Qwen3 encoder; the prompt goes through its chat template and the second-to-last
  hidden state of the real (unpadded) tokens is the embedding (``_encode_prompt``). Embeddings keep
  their own lengths: the transformer takes a list, one tensor per image, and pads internally;
- **latents:** the FLUX VAE's latent, shifted and scaled by its config (``(z - shift) * scale``, the
  inverse of the pipeline's decode); the transformer patchifies 2x2 itself and takes each image as a
  ``(channels, 1, height, width)`` tensor;
- **time and target:** the pipeline gives the transformer ``1 - sigma`` (its ``(1000 - t) / 1000``)
  and negates the output before the Euler step, so the model predicts ``x0 - noise`` at ``1 - sigma``;
- **schedule:** the released schedulers shift statically (``shift: 3.0``, no dynamic shifting; the
  pipeline's ``mu`` is then ignored), so training shifts its logit-normal levels the same way, and
  follows the dynamic rule only for a scheduler configured with it;
- **CFG:** Base samples with real CFG against an empty prompt (``guidance_scale`` > 0; Turbo runs at
  0), so a preview also caches the empty prompt's embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..adapter import Example, ModelAdapter, PreparedSample, Tensors
from ..buckets import to_pixels

if TYPE_CHECKING:
    from PIL import Image

    from ..config import SampleSpec
    from ..datasets import TrainItem

#: Every block's attention and SwiGLU MLP layers, the layers ComfyUI's Z-Image LoRA key map names
#: (q/k/v land in its fused ``qkv``); the per-block modulation stays frozen, as for FLUX.
Z_IMAGE_TARGETS = (
    "attention.to_q",
    "attention.to_k",
    "attention.to_v",
    "attention.to_out.0",
    "feed_forward.w1",
    "feed_forward.w2",
    "feed_forward.w3",
)


class ZImageAdapter(ModelAdapter):
    containers = ("noise_refiner", "context_refiner", "layers")
    block_config_keys = ("n_refiner_layers", "n_refiner_layers", "n_layers")
    default_targets = Z_IMAGE_TARGETS
    #: diffusers' Z-Image LoRA loader treats a file with ``.alpha`` keys as a foreign layout and
    #: renames its keys; alpha is folded into lora_B (``lora_io``) instead, so every loader agrees.
    alpha_keys = False

    def shift_sigmas(self, sigma: torch.Tensor, image_tokens: int) -> torch.Tensor:
        cfg = self.pipe.scheduler.config
        if cfg.get("use_dynamic_shifting", False):
            return super().shift_sigmas(sigma, image_tokens)
        shift = float(cfg.get("shift", 1.0))
        return shift * sigma / (1.0 + (shift - 1.0) * sigma)

    @torch.no_grad()
    def encode_images(self, item: TrainItem, size: tuple[int, int]) -> Tensors:
        vae = self.pipe.vae
        pixels = to_pixels(self.load_image(item.image), size).unsqueeze(0)
        latents = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode()
        return {"latents": ((latents - vae.config.shift_factor) * vae.config.scaling_factor)[0]}

    @torch.no_grad()
    def encode_text(self, item: TrainItem | None, caption: str) -> Tensors:
        embeds, _ = self.pipe.encode_prompt(prompt=caption, device=self.device, do_classifier_free_guidance=False,
                                            max_sequence_length=self.config.max_sequence_length)
        return {"embeds": embeds[0].to(self.weight_dtype)}

    def loss(self, model: torch.nn.Module, batch: list[Example], generator: torch.Generator) -> torch.Tensor:
        latents = torch.stack([ex.images["latents"] for ex in batch]).to(self.device)
        count, _, height, width = latents.shape
        noise = torch.randn(latents.shape, generator=generator).to(self.device, latents.dtype)
        sigma = self.sigmas(count, (height // 2) * (width // 2), generator).to(self.device)
        s = sigma.view(-1, 1, 1, 1).to(latents.dtype)
        noisy = ((1.0 - s) * latents + s * noise).to(self.weight_dtype).unsqueeze(2)
        prediction = model(
            list(noisy.unbind(0)),
            (1.0 - sigma).to(self.weight_dtype),
            [ex.text["embeds"].to(self.device) for ex in batch],
            return_dict=False,
        )[0]
        prediction = torch.stack(list(prediction)).squeeze(2)
        return F.mse_loss(prediction.float(), (latents - noise).float())

    def prepare_sample(self, spec: SampleSpec, text: Tensors | None = None) -> PreparedSample:
        if text is None:
            text = {**self.encode_text(None, spec.prompt), "negative": self.encode_text(None, "")["embeds"]}
        return PreparedSample(spec, text)

    def sample(self, prepared: PreparedSample, size: tuple[int, int], seed: int) -> Image.Image:
        return self.run_pipe(size, seed, prompt_embeds=[prepared.text["embeds"].to(self.device)],
                             negative_prompt_embeds=[prepared.text["negative"].to(self.device)],
                             guidance_scale=self.config.sample_guidance_scale,
                             max_sequence_length=self.config.max_sequence_length)
