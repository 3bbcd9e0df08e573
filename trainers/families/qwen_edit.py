"""Qwen-Image-Edit-2509 LoRA on (source, edit prompt, corrected target) triplets (step 2.2).

Training mirrors what ``QwenImageEditPlusPipeline`` does at inference, so the LoRA learns the task
it will be used for:

- the edit prompt goes through Qwen2.5-VL together with the source image(s), resized to the vision
  encoder's condition size (``condition_pixels``, 384² like the pipeline) exactly as the pipeline
  resizes them, in the pipeline's own prompt template;
- the source images' VAE latents are packed *after* the noisy target tokens, with ``img_shapes``
  listing the target and every source, exactly as the pipeline's denoising loop builds its input;
- the loss is taken on the target tokens only (the source tokens are conditioning, not prediction).

LoRA targets: the seed's ``q_proj``/``v_proj`` are Qwen2.5-VL *text encoder* names. The text encoder
stays frozen (its outputs are cached), so the LoRA goes on the image transformer, whose attention
layers are ``to_q``/``to_k``/``to_v``/``to_out.0`` (image stream) and ``add_q_proj``/``add_k_proj``/
``add_v_proj``/``to_add_out`` (text stream), plus both streams' MLPs - the layers that decide how the
picture changes. Sources are resized to the target's bucket so one batch stacks.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ...core.data.atomic import sha256_file
from ...core.data.errors import FlenwheelError
from ...core.models.pipelines import looks_like_path, qwen_edit_sizes
from ...core.models.qwen_processor import load_processor
from ..adapter import JOINT_ATTENTION_TARGETS, Example, ModelAdapter, PreparedSample, Tensors
from ..buckets import to_pixels
from ..config import SampleSpec

if TYPE_CHECKING:
    from PIL import Image

    from ..datasets import TrainItem

QWEN_EDIT_TARGETS = (
    *JOINT_ATTENTION_TARGETS,
    "img_mlp.net.0.proj",
    "img_mlp.net.2",
    "txt_mlp.net.0.proj",
    "txt_mlp.net.2",
)


class QwenEditAdapter(ModelAdapter):
    containers = ("transformer_blocks",)
    default_targets = QWEN_EDIT_TARGETS
    alpha_keys = False

    def pipeline_extra(self) -> dict:
        if looks_like_path(self.config.model):
            return {"processor": load_processor(f"{self.config.model}/processor")}
        return {}

    def bucket_key(self, item: TrainItem, size: tuple[int, int]) -> Hashable:
        return (size, len(item.controls))

    def text_key(self, item: TrainItem, caption: str) -> str:
        """The prompt is encoded with the source images: the item's id covers their content."""
        return f"{caption}\x00{item.id}"

    def sample_key(self, spec: SampleSpec) -> str:
        return "\x00".join([spec.prompt, *(sha256_file(path) for path in spec.control_paths)])

    @torch.no_grad()
    def _latents(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        pixels = to_pixels(image, size)[None, :, None].to(self.device, self.pipe.vae.dtype)
        return self.pipe._encode_vae_image(pixels, generator=None)[0]

    def encode_images(self, item: TrainItem, size: tuple[int, int]) -> Tensors:
        out = {"latents": self._latents(self.load_image(item.image), size)}
        for index, path in enumerate(item.controls):
            out[f"control_{index}"] = self._latents(self.load_image(path), size)
        return out

    def _condition_images(self, images: list[Image.Image]) -> list[Image.Image]:
        """Sources at the vision encoder's size, resized exactly as the pipeline does at inference:
        the area rounded to multiples of 32 and the image squashed to it, never cropped (the LoRA
        must learn under the conditioning it will be used with)."""
        from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions

        out = []
        for image in images:
            width, height = calculate_dimensions(self.config.condition_pixels, image.width / image.height)
            out.append(self.pipe.image_processor.resize(image, height, width))
        return out

    @torch.no_grad()
    def _encode_prompt(self, caption: str, sources: list[Image.Image]) -> Tensors:
        embeds, _ = self.pipe.encode_prompt(
            prompt=caption, image=self._condition_images(sources), device=self.device
        )
        return {"embeds": embeds[0].to(self.weight_dtype)}

    def encode_text(self, item: TrainItem, caption: str) -> Tensors:
        return self._encode_prompt(caption, [self.load_image(path) for path in item.controls])

    def loss(self, model: torch.nn.Module, batch: list[Example], generator: torch.Generator) -> torch.Tensor:
        target = torch.stack([ex.images["latents"] for ex in batch]).to(self.device)
        count, channels, _, height, width = target.shape
        pack = self.pipe._pack_latents
        controls = [
            pack(
                torch.stack([ex.images[f"control_{i}"] for ex in batch]).to(self.device),
                count,
                channels,
                height,
                width,
            )
            for i in range(sum(key.startswith("control_") for key in batch[0].images))
        ]
        noise = torch.randn(target.shape, generator=generator).to(self.device, target.dtype)
        tokens = (height // 2) * (width // 2)
        sigma = self.sigmas(count, tokens, generator).to(self.device)
        s = sigma.view(-1, 1, 1, 1, 1).to(target.dtype)
        noisy = pack((1.0 - s) * target + s * noise, count, channels, height, width)
        embeds, mask = _pad_text([ex.text["embeds"] for ex in batch])
        shape = (1, height // 2, width // 2)
        prediction = model(
            hidden_states=torch.cat([noisy, *controls], dim=1).to(self.weight_dtype),
            timestep=sigma.to(self.weight_dtype),
            encoder_hidden_states=embeds.to(self.device),
            encoder_hidden_states_mask=None if mask.all() else mask.to(self.device),
            img_shapes=[[shape] * (1 + len(controls))] * count,
            return_dict=False,
        )[0][:, :tokens]
        velocity = pack(noise - target, count, channels, height, width)
        return F.mse_loss(prediction.float(), velocity.float())

    def default_samples(self, items: list[TrainItem]) -> list[SampleSpec]:
        """Without configured samples, preview the first two triplets' edits."""
        return [
            SampleSpec(prompt=item.caption, control_paths=[str(p) for p in item.controls])
            for item in items[:2]
        ]

    def prepare_sample(self, spec: SampleSpec, text: Tensors | None = None) -> PreparedSample:
        controls = [self.load_image(Path(path)) for path in spec.control_paths]
        if not controls:
            raise FlenwheelError(
                f"the Qwen-Edit sample '{spec.prompt}' needs control_paths (the image to edit)"
            )
        return PreparedSample(spec, text if text is not None else self._encode_prompt(spec.prompt, controls),
                              controls)

    def sample(self, prepared: PreparedSample, size: tuple[int, int], seed: int) -> Image.Image:
        embeds = prepared.text["embeds"][None].to(self.device)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)
        with qwen_edit_sizes(vae_pixels=size[0] * size[1], condition_pixels=self.config.condition_pixels):
            return self.run_pipe(size, seed, image=prepared.controls, prompt_embeds=embeds,
                                 prompt_embeds_mask=mask, true_cfg_scale=1.0)


def _pad_text(embeds: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack prompts of different lengths with zero padding and a mask (1 = real token)."""
    longest = max(e.shape[0] for e in embeds)
    stacked = torch.stack([F.pad(e, (0, 0, 0, longest - e.shape[0])) for e in embeds])
    mask = torch.stack(
        [
            torch.cat(
                [
                    torch.ones(e.shape[0], dtype=torch.long),
                    torch.zeros(longest - e.shape[0], dtype=torch.long),
                ]
            )
            for e in embeds
        ]
    )
    return stacked, mask
