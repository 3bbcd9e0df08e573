"""Checkpoints and resume: exact continuation, never a broken or overwritten checkpoint, clear failures."""

from __future__ import annotations

import json
import shutil

import pytest
import torch


def _train_until_stopped(config, stop_after: int):
    """Train in this process and ask for a stop (the stop-request file) once ``stop_after`` steps are done."""
    import io

    from flenwheel.trainers.protocol import Reporter
    from flenwheel.trainers.run import train
    from flenwheel.trainers.stop import request_stop

    class StopAt(Reporter):
        def emit(self, event, **fields):
            if event == "step" and fields["step"] == stop_after:
                request_stop(config.output_dir)
            return super().emit(event, **fields)

    return train(config, StopAt(stream=io.StringIO()))


def _losses(events):
    return {e["step"]: e["loss"] for e in events if e["event"] == "step"}


@pytest.mark.parametrize("accumulation", [1, 2])
def test_resume_repeats_the_uninterrupted_losses(flux_config, train_quietly, tmp_path, accumulation):
    common = dict(
        max_train_steps=8,
        save_every=4,
        caption_dropout=0.3,
        batch_size=2,
        gradient_accumulation_steps=accumulation,
        lr_scheduler="cosine",
        lr_warmup_steps=2,
    )
    _, straight = train_quietly(flux_config(output_path=str(tmp_path / "straight"), **common))
    first = _train_until_stopped(flux_config(output_path=str(tmp_path / "split"), **common), stop_after=4)
    assert first["status"] == "stopped" and first["step"] == 4
    done, resumed = train_quietly(flux_config(output_path=str(tmp_path / "split"), **common))
    start = next(e for e in resumed if e["event"] == "start")
    assert start["resumed_from"].endswith("step_000004") and start["step"] == 4
    reference, continued = _losses(straight), _losses(resumed)
    assert sorted(continued) == [5, 6, 7, 8]
    for step, loss in continued.items():
        assert loss == pytest.approx(reference[step], rel=1e-5, abs=1e-6)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_000008" / "trainable.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoints" / "step_000008" / "trainable.safetensors"))
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)


def test_corrupt_newest_checkpoint_is_skipped_not_loaded(flux_config, train_quietly):
    config = flux_config(max_train_steps=10, save_every=5)
    train_quietly(config)
    newest = config.output_dir / "checkpoints" / "step_000010" / "training_state.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    done, events = train_quietly(flux_config(max_train_steps=12, save_every=5))
    start = next(e for e in events if e["event"] == "start")
    assert start["resumed_from"].endswith("step_000005")
    assert done["step"] == 12
    assert (config.output_dir / "checkpoints" / "step_000010").is_dir()
    assert list((config.output_dir / "checkpoints").glob("step_000010.superseded-*"))


def test_half_written_checkpoint_folder_is_ignored_and_cleaned(flux_config, train_quietly):
    config = flux_config(max_train_steps=5, save_every=5)
    train_quietly(config)
    partial = config.output_dir / "checkpoints" / ".step_000010.tmp-abc"
    partial.mkdir()
    (partial / "trainable.safetensors").write_bytes(b"half")
    done, events = train_quietly(flux_config(max_train_steps=6, save_every=5))
    assert next(e for e in events if e["event"] == "start")["resumed_from"].endswith("step_000005")
    assert not partial.exists()


def test_resume_none_refuses_to_overwrite_checkpoints(flux_config, train_quietly):
    from flenwheel.trainers.config import ConfigError

    train_quietly(flux_config(max_train_steps=5))
    with pytest.raises(ConfigError, match="resume: auto"):
        train_quietly(flux_config(max_train_steps=5, resume="none"))


def test_resume_from_explicit_checkpoint_keeps_newer_ones(flux_config, train_quietly):
    config = flux_config(max_train_steps=10, save_every=5)
    train_quietly(config)
    root = config.output_dir / "checkpoints"
    done, events = train_quietly(
        flux_config(max_train_steps=10, save_every=5, resume=str(root / "step_000005"))
    )
    assert next(e for e in events if e["event"] == "start")["step"] == 5
    assert (root / "step_000010").is_dir() and list(root.glob("step_000010.superseded-*"))


def test_keep_last_n_rotates_old_checkpoints(flux_config, train_quietly):
    config = flux_config(max_train_steps=8, save_every=2, keep_last_n=2)
    train_quietly(config)
    names = sorted(p.name for p in (config.output_dir / "checkpoints").iterdir())
    assert names == ["step_000006", "step_000008"]


def test_checkpoint_state_records_step_and_data_position(flux_config, train_quietly):
    config = flux_config(max_train_steps=5, save_every=5, batch_size=2)
    train_quietly(config)
    state = json.loads((config.output_dir / "checkpoints" / "step_000005" / "state.json").read_text())
    assert state["step"] == 5 and state["micro_step"] == 5 and state["global_batch"] == 2
    assert (state["epoch"], state["batch_index"]) == (1, 2)  # 4 images in 3 buckets -> 3 batches an epoch
    assert set(state["files"]) == {"lora.safetensors", "trainable.safetensors", "training_state.pt"}


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(flux_config, tmp_path, config_file):
    import io

    from flenwheel.trainers.protocol import Reporter, parse_line
    from flenwheel.trainers.run import run_job

    path = config_file(
        flux_config(
            max_train_steps=20,
            save_every=1,
            learning_rate=1e30,
            max_grad_norm=0.0,
            optimizer="adamw",
            weight_decay=0.0,
        )
    )
    stream = io.StringIO()
    status = run_job("flux", path, Reporter(stream=stream))
    events = [e for e in map(parse_line, stream.getvalue().splitlines()) if e]
    error = events[-1]
    assert status == 1 and error["event"] == "error" and error["kind"] == "nan"
    assert "learning_rate" in error["message"] and error["step"] >= 2
    assert error["last_checkpoint"].endswith(f"step_{error['step'] - 1:06d}")
    saved = sorted(p.name for p in (tmp_path / "flux_out" / "checkpoints").iterdir())
    for name in saved:
        from safetensors.torch import load_file

        weights = load_file(str(tmp_path / "flux_out" / "checkpoints" / name / "trainable.safetensors"))
        assert all(torch.isfinite(t).all() for t in weights.values()), name
    assert not (tmp_path / "flux_out" / "flux_lora.safetensors").exists()


def test_out_of_memory_becomes_an_error_event_with_memory_options(flux_config, config_file, monkeypatch):
    import io

    from flenwheel.trainers.families.flux import FluxAdapter
    from flenwheel.trainers.protocol import Reporter, parse_line
    from flenwheel.trainers.run import run_job

    real_loss = FluxAdapter.loss

    def loss(self, model, batch, generator):
        if getattr(self, "calls", 0) >= 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.calls = getattr(self, "calls", 0) + 1
        return real_loss(self, model, batch, generator)

    monkeypatch.setattr(FluxAdapter, "loss", loss)
    path = config_file(flux_config(max_train_steps=10, save_every=2, gradient_checkpointing=False))
    stream = io.StringIO()
    assert run_job("flux", path, Reporter(stream=stream)) == 1
    error = [e for e in map(parse_line, stream.getvalue().splitlines()) if e][-1]
    assert error["kind"] == "oom" and error["step"] == 3
    assert "gradient_checkpointing: true" in error["message"] and "quantize: nf4" in error["message"]
    assert error["last_checkpoint"].endswith("step_000002")


def test_changed_lora_rank_cannot_resume_silently(flux_config, train_quietly):
    from flenwheel.trainers.checkpoint import CheckpointError

    train_quietly(flux_config(max_train_steps=2, save_every=2))
    with pytest.raises(CheckpointError, match="different LoRA layout|lora_rank"):
        train_quietly(flux_config(max_train_steps=4, lora_rank=8))


def test_finished_run_rerun_returns_the_same_lora(flux_config, train_quietly):
    config = flux_config(max_train_steps=4, save_every=2)
    first, _ = train_quietly(config)
    again, events = train_quietly(config)
    assert again["status"] == "finished" and again["step"] == 4
    assert not [e for e in events if e["event"] == "step"]
    shutil.rmtree(config.output_dir / "checkpoints")


@pytest.mark.parametrize("kind", ["flux", "qwen-edit"])
def test_resume_reads_cached_embeddings_and_never_loads_the_text_encoders(
        kind, flux_config, qwen_config, train_quietly, monkeypatch):
    from flenwheel.trainers import adapter as adapter_module
    from flenwheel.trainers.families.flux import FluxAdapter
    from flenwheel.trainers.families.qwen_edit import QwenEditAdapter

    make = flux_config if kind == "flux" else qwen_config
    extra = {"sample_prompts": ["[trigger] smiling"]} if kind == "flux" else {}
    settings = dict(save_every=2, caption_dropout=0.3, sample_every=2, **extra)
    train_quietly(make(max_train_steps=2, **settings))
    cache = make().output_dir / "cache"
    assert list((cache / "text").glob("*.safetensors")) and list((cache / "latents").glob("*.safetensors"))

    loaded = {}
    real = adapter_module.load_pipeline_parts

    def spy(*args, **kwargs):
        loaded.update(kwargs)
        return real(*args, **kwargs)

    def no_encoding(*args, **kwargs):
        raise AssertionError("the text encoders ran again")

    adapter_class = FluxAdapter if kind == "flux" else QwenEditAdapter
    monkeypatch.setattr(adapter_module, "load_pipeline_parts", spy)
    monkeypatch.setattr(adapter_class, "encode_text", no_encoding)
    monkeypatch.setattr(adapter_class, "encode_images", no_encoding)
    done, events = train_quietly(make(max_train_steps=4, **settings))
    assert done["step"] == 4 and [e["event"] for e in events].count("sample") == 1
    from flenwheel.core.models.registry import family

    encoders = family(kind).text_encoders
    assert encoders and all(loaded[name] is None for name in encoders)



def test_an_unreadable_cache_file_is_computed_again(flux_config, train_quietly):
    config = flux_config(max_train_steps=2, save_every=2)
    train_quietly(config)
    files = sorted((config.output_dir / "cache").rglob("*.safetensors"))
    for file in files:
        file.write_bytes(b"not a safetensors file")
    done, _ = train_quietly(flux_config(max_train_steps=3, save_every=2))
    assert done["step"] == 3
    assert all(file.stat().st_size > 100 for file in files)  # rewritten whole
