"""What the Qwen-Edit trainer caches is what ``QwenImageEditPlusPipeline.__call__`` feeds its transformer.

A LoRA learns the edit under the conditioning it is trained with; if the cached prompt embedding
(Qwen2.5-VL over the prompt template and the source image at the vision encoder's size) or the
source's latent tokens differ from what the pipeline builds at inference, the LoRA is trained for
another task. The pipeline is run for one step with its transformer's forward recorded, on a source
whose inference sizes equal the trainer's bucket (square, larger than the bucket, so both resize).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from flenwheel.core.models.pipelines import qwen_edit_sizes
from flenwheel.trainers.datasets import TrainItem
from flenwheel.trainers.loop import make_adapter


def test_cached_prompt_embeddings_and_condition_tokens_equal_the_pipelines(qwen_config, tmp_path):
    adapter = make_adapter(qwen_config(), torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    pipe = adapter.pipe
    pipe.transformer = adapter.load_transformer().eval()
    rng = np.random.default_rng(4)
    source = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    source.save(tmp_path / "source.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "target.png")
    size, prompt = (64, 64), "turn the head to the left"
    item = TrainItem(tmp_path / "target.png", prompt, "t", (tmp_path / "source.png",), size=size)
    cached_text = adapter.encode_text(item, prompt)["embeds"]
    control = adapter.encode_images(item, size)["control_0"][None]

    seen: dict = {}
    forward = pipe.transformer.forward

    def record(*args, **kwargs):
        seen.setdefault("call", kwargs)
        return forward(*args, **kwargs)

    pipe.transformer.forward = record
    with qwen_edit_sizes(vae_pixels=size[0] * size[1], condition_pixels=adapter.config.condition_pixels):
        pipe(image=[source], prompt=prompt, width=size[0], height=size[1], num_inference_steps=1,
             true_cfg_scale=1.0, output_type="latent", generator=torch.Generator().manual_seed(0))
    call = seen["call"]
    embeds, mask = call["encoder_hidden_states"], call["encoder_hidden_states_mask"]
    assert mask is None or bool(mask.all())
    assert embeds.shape[1:] == cached_text.shape
    assert torch.allclose(embeds[0], cached_text, atol=1e-6, rtol=0), (embeds[0] - cached_text).abs().max()
    _, channels, _, height, width = control.shape
    tokens = (height // 2) * (width // 2)
    condition = call["hidden_states"][:, tokens:]
    ours = pipe._pack_latents(control, 1, channels, height, width)
    assert condition.shape == ours.shape
    assert torch.allclose(condition, ours, atol=1e-6, rtol=0), (condition - ours).abs().max()
    assert call["img_shapes"] == [[(1, height // 2, width // 2)] * 2]
