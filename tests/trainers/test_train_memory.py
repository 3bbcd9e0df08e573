"""Training memory options on the five tiny bases: block swap changes no number, fp8 base stays within
fp8's precision, both resume exactly after kill -9, and impossible choices fail before loading.

fp8 tolerance: e4m3 keeps 3 mantissa bits, so a stored base weight is off by at most u = 2^-4
relative; the flow-matching loss of each step may move by at most u relative (measured: ~0.2%),
while the LoRA weights (trained in fp32 on top) stay fp32 and trainable.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from flenwheel.core.models.device_memory import FP8_UNIT_ROUNDOFF, fp8_dtype
from flenwheel.trainers.block_swap import BlockSwapError

CONFIGS = {"flux": "flux_config", "flux2-klein": "klein_config", "qwen-edit": "qwen_config",
           "qwen-edit-2511": "qwen_2511_config", "z-image": "z_image_config"}


def _losses(events):
    return [e["loss"] for e in events if e["event"] == "step"]


def _run(train_quietly, config):
    done, events = train_quietly(config)
    assert done["status"] == "finished"
    return _losses(events), load_file(done["lora_path"])


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_block_swap_trains_the_same_lora_as_the_plain_path(kind, request, train_quietly, tmp_path):
    make = request.getfixturevalue(CONFIGS[kind])
    common = {"max_train_steps": 3, "save_every": 10, "gradient_checkpointing": True}
    plain_losses, plain = _run(train_quietly, make(output_path=str(tmp_path / "plain"), **common))
    swap_losses, swapped = _run(train_quietly, make(output_path=str(tmp_path / "swap"), blocks_to_swap=2, **common))
    assert swap_losses == plain_losses
    assert plain.keys() == swapped.keys() and all(torch.equal(plain[k], swapped[k]) for k in plain)


def test_block_swap_brings_each_block_in_for_its_forward_and_its_recomputation(flux_config):
    """The hooks' bookkeeping: with checkpointing, every swapped block arrives once for the forward
    pass and once more when the backward pass recomputes it, and leaves again after."""
    from flenwheel.trainers.adapter import Example
    from flenwheel.trainers.loop import Trainer, make_adapter

    config = flux_config(blocks_to_swap=2, gradient_checkpointing=True)
    trainer = Trainer(config)
    adapter = make_adapter(config, torch.device("cpu"), torch.float32)
    adapter.load_encoders(text=False)
    transformer = adapter.load_transformer()
    trainer._add_lora(adapter, transformer)
    swap = adapter.place_transformer(transformer)
    assert len(swap.swapped) == 2 and swap.resident() == 0
    width = transformer.config.joint_attention_dim
    text = {"embeds": torch.randn(8, width), "pooled": torch.randn(transformer.config.pooled_projection_dim)}
    latents = torch.randn(transformer.config.in_channels // 4, 8, 8)
    loss = adapter.loss(transformer, [Example({"latents": latents}, text, (64, 64))], torch.Generator())
    assert swap.loads == 2 and swap.resident() == 0
    loss.backward()
    # torch's checkpoint stops a recomputation once it has what backward needs, so the last block
    # recomputed may stay until the next block arrives: never more than one beyond the running one
    assert swap.loads == 4 and swap.resident() <= 1
    grads = {name: p.grad for name, p in transformer.named_parameters() if "lora_B" in name}
    assert grads and all(grad is not None and grad.abs().sum() > 0 for grad in grads.values())


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_fp8_base_keeps_the_lora_in_fp32_and_the_losses_within_fp8_precision(kind, request, train_quietly,
                                                                              tmp_path, monkeypatch):
    from flenwheel.trainers import adapter as adapter_module

    make = request.getfixturevalue(CONFIGS[kind])
    plain_losses, plain = _run(train_quietly, make(output_path=str(tmp_path / "plain"), max_train_steps=3))
    placed = []
    original = adapter_module.ModelAdapter.place_transformer
    monkeypatch.setattr(adapter_module.ModelAdapter, "place_transformer",
                        lambda self, model: (placed.append(model), original(self, model))[1])
    fp8_losses, fp8 = _run(train_quietly, make(output_path=str(tmp_path / "fp8"), max_train_steps=3, quantize="fp8"))
    frozen = [p for p in placed[0].parameters() if not p.requires_grad]
    trainable = [p for p in placed[0].parameters() if p.requires_grad]
    assert sum(p.dtype == fp8_dtype() for p in frozen) > len(frozen) // 2
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert all(abs(a - b) <= FP8_UNIT_ROUNDOFF * abs(b) for a, b in zip(fp8_losses, plain_losses, strict=True))
    assert fp8_losses != plain_losses  # the base really was stored in fp8
    assert plain.keys() == fp8.keys() and all(fp8[k].dtype == plain[k].dtype for k in plain)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"blocks_to_swap": 56}, "blocks_to_swap: 56 is above 55, the most FLUX.1-dev allows; use 0 to 55"),
    ({"blocks_to_swap": 2, "quantize": "nf4"}, "blocks_to_swap does not combine with quantize: nf4.*quantize: fp8"),
    ({"quantize": "fp4"}, "quantize"),
])
def test_impossible_training_memory_options_fail_in_the_config(flux_config, overrides, message):
    from flenwheel.trainers.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        flux_config(**overrides)


def test_more_blocks_to_swap_than_the_model_has_fails_before_its_weights_are_read(flux_config, train_quietly,
                                                                                  monkeypatch):
    from flenwheel.trainers import adapter as adapter_module

    def never(*args, **kwargs):
        raise AssertionError("the transformer's weights were read")

    monkeypatch.setattr(adapter_module, "load_transformer", never)
    with pytest.raises(BlockSwapError, match="^blocks_to_swap: 3 is more than the 2 blocks this FLUX.1-dev "
                                             "transformer has; use 0 to 2$"):
        train_quietly(flux_config(blocks_to_swap=3))


@pytest.mark.slow
@pytest.mark.parametrize("option", [{"blocks_to_swap": 2, "gradient_checkpointing": True}, {"quantize": "fp8"}],
                         ids=["blocks_to_swap", "fp8"])
def test_killed_with_9_the_run_resumes_to_the_uninterrupted_lora(option, flux_config, config_file, child_env,
                                                                 train_quietly, tmp_path):
    steps = 6
    reference = flux_config(output_path=str(tmp_path / "whole"), max_train_steps=steps, save_every=2, **option)
    whole_losses, whole = _run(train_quietly, reference)
    killed = flux_config(output_path=str(tmp_path / "killed"), max_train_steps=steps, save_every=2, **option)
    process = subprocess.Popen([sys.executable, "-m", "flenwheel.trainers", "flux", "--config",
                                str(config_file(killed))], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=child_env)
    for line in process.stdout:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "checkpoint" and event.get("step") == 4:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    done, events = train_quietly(killed)
    start = next(e for e in events if e["event"] == "start")
    assert start["resumed_from"] and start["resumed_from"].endswith("step_000004")
    assert _losses(events) == whole_losses[4:]
    resumed = load_file(done["lora_path"])
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


@pytest.mark.slow
def test_block_swap_and_fp8_train_under_ddp_with_identical_weights_on_both_ranks(flux_config, config_file,
                                                                                 child_env):
    """Two CPU processes under torchrun: the frozen base (swapped or fp8) is never broadcast, the LoRA is."""
    import re

    config = flux_config(max_train_steps=3, save_every=3, blocks_to_swap=2, gradient_checkpointing=True,
                         quantize="fp8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "flenwheel.trainers", "flux", "--config", str(config_file(config))]
    result = subprocess.run(command, capture_output=True, text=True, env=child_env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    sums = dict(re.findall(r"rank (\d)\] info: LoRA weights checksum (\S+)", result.stderr))
    assert sorted(sums) == ["0", "1"] and sums["0"] == sums["1"]
    assert (config.output_dir / config.lora_filename()).is_file()


def test_out_of_memory_advice_names_fp8_and_block_swap_until_they_are_used(flux_config):
    from flenwheel.trainers.failures import memory_hints

    plain = " ".join(memory_hints(flux_config()))
    assert "quantize: fp8" in plain and "blocks_to_swap: 16 (frozen blocks wait in CPU memory; up to 55)" in plain
    swapping = " ".join(memory_hints(flux_config(quantize="fp8", blocks_to_swap=2)))
    assert "blocks_to_swap" not in swapping and "quantize: nf4" not in swapping  # nf4 cannot swap
