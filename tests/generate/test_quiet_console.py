"""A generation prints nothing a user must learn to ignore: no CLIP length warning, no missing-LoRA-keys warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from flenwheel.core.generate.generate import generate_batch
from flenwheel.core.generate.prompt_sets import RenderSettings
from flenwheel.core.models.loras import LoraSpec
from flenwheel.core.models.pipelines import clip_prompt, prompt_kwargs

LONG = ("photo of ohwx_char person, " + "standing in a sunlit garden with flowers, " * 12).strip()


@pytest.fixture
def library_logs(caplog):
    """diffusers' and transformers' warnings, which normally bypass the root logger."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.enable_propagation()
    transformers_logging.enable_propagation()
    with caplog.at_level(logging.WARNING):
        yield caplog
    diffusers_logging.disable_propagation()
    transformers_logging.disable_propagation()


def test_a_long_prompt_reaches_t5_whole_and_clip_cut_without_a_warning(flux, tiny_loras, library_logs):
    handle = flux.with_loras([LoraSpec(str(tiny_loras["v1"]), 1.0)])
    settings = RenderSettings(width=32, height=32, steps=2)
    tokenizer = flux.pipe.tokenizer
    assert len(tokenizer(LONG, verbose=False).input_ids) > tokenizer.model_max_length
    tokenizer.deprecation_warnings.clear()  # transformers warns once per tokenizer: make this call count
    [ours] = generate_batch(handle, [LONG], [7], settings)
    text = library_logs.text
    assert "Token indices sequence length is longer" not in text
    assert "CLIP can only handle sequences up to" not in text
    assert "No LoRA keys associated" not in text
    assert ours.fields["prompt"] == LONG
    # diffusers, given the long prompt itself, cuts CLIP's copy to the same tokens: the same image.
    library_logs.clear()
    plain = flux.pipe(prompt=LONG, height=32, width=32, num_inference_steps=2, guidance_scale=3.5,
                      generator=torch.Generator("cpu").manual_seed(7)).images[0]
    assert np.array_equal(np.asarray(plain), np.asarray(ours.image))
    assert "CLIP can only handle sequences up to" in library_logs.text  # what the fit spares the console


def test_the_lora_goes_into_the_transformer_only(flux, tiny_loras, library_logs):
    handle = flux.with_loras([LoraSpec(str(tiny_loras["v2"]), 1.0)])
    generate_batch(handle, ["ohwx_char person"], [1], RenderSettings(width=32, height=32, steps=2))
    adapters = flux.pipe.get_list_adapters()
    assert adapters.get("transformer") and not adapters.get("text_encoder")
    assert "No LoRA keys associated" not in library_logs.text


def test_clip_gets_a_prompt_it_can_take_and_short_prompts_pass_unchanged(flux):
    tokenizer = flux.pipe.tokenizer
    cut = clip_prompt(tokenizer, LONG)
    limit = tokenizer.model_max_length
    assert tokenizer(cut).input_ids == tokenizer(LONG, truncation=True, max_length=limit).input_ids
    assert clip_prompt(tokenizer, "ohwx_char person smiling") == "ohwx_char person smiling"
    assert prompt_kwargs(flux.pipe, [LONG]) == {"prompt": [cut], "prompt_2": [LONG]}
