"""Tiny offline pipelines load through the real loaders and generate, with no network at all."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.models.pipelines import LoadOptions, load_pipeline, qwen_edit_sizes
from flenwheel.core.testing import tiny


def test_flux_loads_with_stock_from_pretrained_and_generates(tiny_flux):
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_flux)
    image = pipe("portrait of ohwx_char person", height=64, width=64, num_inference_steps=2,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)


def test_qwen_edit_loads_with_stock_from_pretrained_and_edits(tiny_qwen_edit):
    from diffusers import QwenImageEditPlusPipeline

    pipe = QwenImageEditPlusPipeline.from_pretrained(tiny_qwen_edit)
    with qwen_edit_sizes(vae_pixels=64 * 64, condition_pixels=56 * 56):
        image = pipe(image=[Image.new("RGB", (64, 64), "red")], prompt="make the background a forest",
                     height=64, width=64, num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)


def test_edit_sizes_are_restored_after_the_block():
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as module

    before = (module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE)
    with pytest.raises(RuntimeError), qwen_edit_sizes(vae_pixels=4096, condition_pixels=3136):
        assert module.VAE_IMAGE_SIZE == 4096
        raise RuntimeError
    assert (module.VAE_IMAGE_SIZE, module.CONDITION_IMAGE_SIZE) == before


def test_our_loader_is_deterministic_per_seed(tiny_flux):
    handle = load_pipeline("flux", str(tiny_flux), options=LoadOptions(dtype="fp32", device="cpu"))

    def run(seed):
        return handle.pipe("x", height=64, width=64, num_inference_steps=2, output_type="np",
                           generator=torch.Generator().manual_seed(seed)).images[0]

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_image_only_processor_matches_the_stock_one(tiny_qwen_edit):
    from transformers import Qwen2VLProcessor

    from flenwheel.core.models.qwen_processor import ImageOnlyQwen2VLProcessor

    stock = Qwen2VLProcessor.from_pretrained(tiny_qwen_edit / "processor")
    fallback = ImageOnlyQwen2VLProcessor(image_processor=stock.image_processor, tokenizer=stock.tokenizer)
    text = "Picture 1: <|vision_start|><|image_pad|><|vision_end|>make it blue"
    image = Image.new("RGB", (64, 64), "red")
    a, b = stock(text=[text], images=[image], return_tensors="pt"), fallback(text=[text], images=[image],
                                                                            return_tensors="pt")
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values"], b["pixel_values"])


def test_fallback_processor_is_chosen_only_without_torchvision(tiny_qwen_edit, monkeypatch):
    import builtins

    from flenwheel.core.models import qwen_processor

    assert type(qwen_processor.load_processor(tiny_qwen_edit / "processor")).__name__ == "Qwen2VLProcessor"
    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name == "torchvision":
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    processor = qwen_processor.load_processor(tiny_qwen_edit / "processor")
    assert type(processor).__name__ == "ImageOnlyQwen2VLProcessor"


def test_the_suite_is_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(RuntimeError, match="must run offline"):
        socket.create_connection(("1.1.1.1", 443), timeout=2)


def test_a_hub_id_not_in_the_cache_fails_clearly_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match="cannot load the flux model black-forest-labs/FLUX.1-dev: it is not"):
        load_pipeline("flux", "black-forest-labs/FLUX.1-dev", options=LoadOptions(device="cpu"))


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match=f"folder {tmp_path / 'nothing'} does not exist"):
        load_pipeline("flux", str(tmp_path / "nothing"), options=LoadOptions(device="cpu"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        load_pipeline("qwen-edit", str(tmp_path / "empty"), options=LoadOptions(device="cpu"))


def test_quantisation_on_cpu_fails_before_loading(tiny_flux):
    with pytest.raises(ModelLoadError, match="needs an NVIDIA GPU"):
        load_pipeline("flux", str(tiny_flux), options=LoadOptions(device="cpu", quantize="nf4"))
    with pytest.raises(ModelLoadError, match="unknown quantize"):
        load_pipeline("flux", str(tiny_flux), options=LoadOptions(device="cpu", quantize="q3"))


def test_cached_build_is_reused_and_rebuilt_when_stale(tmp_path):
    folder = tiny.ensure("flux", tmp_path)
    marker = folder / "flenwheel_tiny.json"
    stamp = marker.stat().st_mtime_ns
    assert tiny.ensure("flux", tmp_path) == folder and marker.stat().st_mtime_ns == stamp
    marker.write_text('{"kind": "flux", "format": 0}')
    tiny.ensure("flux", tmp_path)
    assert tiny.is_built(folder, "flux")
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-flux"]


def test_quantisation_without_bitsandbytes_says_how_to_install(tiny_flux, monkeypatch):
    import builtins

    from flenwheel.core.data.errors import MissingDependencyError
    from flenwheel.core.models.pipelines import quantization_config

    real_import = builtins.__import__

    def no_bnb(name, *args, **kwargs):
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bnb)
    monkeypatch.setattr("flenwheel.core.data.availability.is_available", lambda name: name != "bitsandbytes")
    with pytest.raises(MissingDependencyError, match=r"-m pip install bitsandbytes"):
        quantization_config("flux", LoadOptions(quantize="nf4"), "cuda:0")


@pytest.mark.parametrize(("dtype", "expected"), [("fp16", "float16"), ("bf16", "bfloat16")])
def test_nf4_computes_in_the_chosen_dtype(dtype, expected, monkeypatch):
    """An fp16-only card asks for fp16; NF4 layers must then compute in fp16, not a fixed bf16.

    Only the settings handed to the bitsandbytes configs are checked, so stand-ins replace the config
    classes (which refuse to exist without bitsandbytes installed).
    """
    import sys
    import types

    import diffusers
    import torch
    import transformers

    monkeypatch.setitem(sys.modules, "bitsandbytes", sys.modules.get("bitsandbytes") or types.ModuleType("bnb"))
    for module in (diffusers, transformers):
        monkeypatch.setattr(module, "BitsAndBytesConfig", types.SimpleNamespace)
    monkeypatch.setattr(diffusers, "PipelineQuantizationConfig", types.SimpleNamespace)
    from flenwheel.core.models.pipelines import quantization_config

    quant = quantization_config("flux", LoadOptions(dtype=dtype, quantize="nf4", quantize_text_encoder="nf4"),
                                "cuda:0")
    assert quant.quant_mapping["transformer"].bnb_4bit_compute_dtype == getattr(torch, expected)
    assert quant.quant_mapping["text_encoder_2"].bnb_4bit_compute_dtype == getattr(torch, expected)
