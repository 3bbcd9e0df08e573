"""What the Qwen-Edit trainer caches is what ``QwenImageEditPlusPipeline.__call__`` feeds its transformer.

A LoRA learns the edit under the conditioning it is trained with; if the cached prompt embedding
(Qwen2.5-VL over the prompt template and the source image at the vision encoder's size) or the
source's latent tokens differ from what the pipeline builds at inference, the LoRA is trained for
another task. The pipeline is run for one step with its transformer's forward recorded. The source
tokens are compared on a source whose inference size equals the trainer's bucket (square, larger
than the bucket, so both resize); the prompt embedding on any source shape, since the vision
encoder sees the source at the pipeline's own size whatever the training bucket is.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from flenwheel.core.models.pipelines import qwen_edit_sizes
from flenwheel.trainers.datasets import TrainItem
from flenwheel.trainers.loop import make_adapter


def _adapter(qwen_config):
    adapter = make_adapter(qwen_config(), torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    adapter.pipe.transformer = adapter.load_transformer().eval()
    return adapter


def _pipeline_inputs(adapter, source: Image.Image, prompt: str, size: tuple[int, int]) -> dict:
    """The keyword arguments of the pipeline's first transformer call."""
    pipe, seen = adapter.pipe, {}
    forward = pipe.transformer.forward

    def record(*args, **kwargs):
        seen.setdefault("call", kwargs)
        return forward(*args, **kwargs)

    pipe.transformer.forward = record
    try:
        with qwen_edit_sizes(vae_pixels=size[0] * size[1], condition_pixels=adapter.config.condition_pixels):
            pipe(image=[source], prompt=prompt, width=size[0], height=size[1], num_inference_steps=1,
                 true_cfg_scale=1.0, output_type="latent", generator=torch.Generator().manual_seed(0))
    finally:
        pipe.transformer.forward = forward
    return seen["call"]


def _item(tmp_path, source: Image.Image, size: tuple[int, int], prompt: str) -> TrainItem:
    rng = np.random.default_rng(5)
    source.save(tmp_path / "source.png")
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(tmp_path / "target.png")
    return TrainItem(tmp_path / "target.png", prompt, "t", (tmp_path / "source.png",), size=size)


def _noise(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(4).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_cached_prompt_embeddings_and_condition_tokens_equal_the_pipelines(qwen_config, tmp_path):
    adapter = _adapter(qwen_config)
    size, prompt, source = (64, 64), "turn the head to the left", _noise(128, 128)
    item = _item(tmp_path, source, size, prompt)
    cached_text = adapter.encode_text(item, prompt)["embeds"]
    control = adapter.encode_images(item, size)["control_0"][None]
    call = _pipeline_inputs(adapter, source, prompt, size)
    embeds, mask = call["encoder_hidden_states"], call["encoder_hidden_states_mask"]
    assert mask is None or bool(mask.all())
    assert embeds.shape[1:] == cached_text.shape
    assert torch.allclose(embeds[0], cached_text, atol=1e-6, rtol=0), (embeds[0] - cached_text).abs().max()
    _, channels, _, height, width = control.shape
    tokens = (height // 2) * (width // 2)
    condition = call["hidden_states"][:, tokens:]
    ours = adapter.pipe._pack_latents(control, 1, channels, height, width)
    assert condition.shape == ours.shape
    assert torch.allclose(condition, ours, atol=1e-6, rtol=0), (condition - ours).abs().max()
    assert call["img_shapes"] == [[(1, height // 2, width // 2)] * 2]


def test_cached_prompt_embedding_equals_the_pipelines_for_an_odd_source_shape(qwen_config, tmp_path):
    """A 100x70 source: the vision encoder's 64x32 is another aspect ratio, which the pipeline squashes to."""
    adapter = _adapter(qwen_config)
    size, prompt, source = (64, 48), "make it evening", _noise(100, 70)
    cached_text = adapter.encode_text(_item(tmp_path, source, size, prompt), prompt)["embeds"]
    embeds = _pipeline_inputs(adapter, source, prompt, size)["encoder_hidden_states"]
    assert embeds.shape[1:] == cached_text.shape
    assert torch.allclose(embeds[0], cached_text, atol=1e-6, rtol=0), (embeds[0] - cached_text).abs().max()
