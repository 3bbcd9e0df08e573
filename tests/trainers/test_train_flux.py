"""FLUX character LoRA on the tiny model: it learns, it saves what users need, and others can load it."""

from __future__ import annotations

import pytest
import torch


def _mean(values):
    return sum(values) / len(values)


def test_loss_decreases_over_30_steps_on_4_images(flux_config, train_quietly):
    done, events = train_quietly(flux_config(max_train_steps=30, save_every=100, learning_rate=3e-3))
    losses = [e["loss"] for e in events if e["event"] == "step"]
    assert len(losses) == 30
    assert _mean(losses[-8:]) < _mean(losses[:8]) * 0.97, losses
    assert done["status"] == "finished"


def test_outputs_on_disk_and_metadata(flux_config, train_quietly):
    from flenwheel.trainers.config import load_config
    from flenwheel.trainers.lora_io import read_metadata

    config = flux_config(
        output_name="char_lora_v1", lora_alpha=8.0, sample_every=5, sample_prompts=["[trigger] smiling"]
    )
    done, events = train_quietly(config)
    out = config.output_dir
    final = out / "char_lora_v1.safetensors"
    assert done["lora_path"] == str(final) and final.is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_000005", "step_000010"]
    assert (out / "train_log.jsonl").is_file()
    assert load_config(out / "config.yaml") == config  # the run folder records the config it ran with
    samples = [p for e in events if e["event"] == "sample" for p in e["paths"]]
    assert len(samples) == 2 and all(torch.tensor(1) for p in samples)
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_000005_00.png", "step_000010_00.png"]
    meta = read_metadata(final)
    assert meta["flenwheel.base_model"] == config.model
    assert meta["flenwheel.rank"] == "4" and meta["flenwheel.alpha"] == "8.0"
    assert meta["flenwheel.steps"] == "10"
    assert meta["flenwheel.dataset_version"] == "images"
    assert len(meta["flenwheel.dataset_hash"]) == 64
    assert meta["flenwheel.instance_token"] == "ohwx_char"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "4", "alpha folded: stored alpha = rank"


def _trained_transformer(model_dir, config, checkpoint):
    """Rebuild the transformer exactly as it was at ``checkpoint`` (peft LoRA with the training alpha)."""
    from diffusers import FluxTransformer2DModel
    from peft import LoraConfig
    from safetensors.torch import load_file

    from flenwheel.trainers.families.flux import FLUX_TARGETS
    from flenwheel.trainers.lora_io import resolve_targets

    model = FluxTransformer2DModel.from_pretrained(model_dir, subfolder="transformer")
    targets = resolve_targets(
        model, list(FLUX_TARGETS), ("transformer_blocks", "single_transformer_blocks"), "flux"
    )
    model.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.alpha, target_modules=targets))
    missing = model.load_state_dict(load_file(str(checkpoint / "trainable.safetensors")), strict=False)
    assert not missing.unexpected_keys
    return model.eval()


def _transformer_inputs(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cfg = model.config
    return {
        "hidden_states": torch.randn(1, 64, cfg.in_channels, generator=gen),
        "encoder_hidden_states": torch.randn(1, 8, cfg.joint_attention_dim, generator=gen),
        "pooled_projections": torch.randn(1, cfg.pooled_projection_dim, generator=gen),
        "timestep": torch.tensor([0.5]),
        "guidance": torch.tensor([1.0]),
        "img_ids": torch.zeros(64, 3),
        "txt_ids": torch.zeros(8, 3),
        "return_dict": False,
    }


def test_lora_loads_in_fresh_flux_pipeline_changes_output_and_matches_training(
    flux_config, train_quietly, tiny_flux
):
    from diffusers import FluxPipeline

    config = flux_config(lora_alpha=8.0)
    done, _ = train_quietly(config)
    pipe = FluxPipeline.from_pretrained(tiny_flux)
    pipe.set_progress_bar_config(disable=True)

    def generate():
        return pipe(
            "photo of ohwx_char",
            height=64,
            width=64,
            num_inference_steps=2,
            max_sequence_length=32,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    base = generate()
    pipe.load_lora_weights(done["lora_path"], adapter_name="char")
    assert abs(generate() - base).max() > 1e-3
    inputs = _transformer_inputs(pipe.transformer)
    with torch.no_grad():
        loaded = pipe.transformer(**inputs)[0]
        trained = _trained_transformer(tiny_flux, config, config.output_dir / "checkpoints" / "step_000010")(
            **inputs
        )[0]
    assert torch.allclose(loaded, trained, atol=1e-5), (loaded - trained).abs().max()


def test_lora_loads_through_core_pipelines(flux_config, train_quietly, tiny_flux):
    """Other stages load LoRAs with core.pipelines.load_pipeline + diffusers' load_lora_weights."""
    from flenwheel.core.models.pipelines import load_pipeline

    done, _ = train_quietly(flux_config())
    handle = load_pipeline("flux", str(tiny_flux), dtype="fp32", device="cpu")
    handle.pipe.load_lora_weights(done["lora_path"], adapter_name="char")
    assert "char" in handle.pipe.get_list_adapters()["transformer"]


def test_wrong_target_module_names_the_real_layers(flux_config, train_quietly):
    from flenwheel.core.data.errors import FlenwheelError

    with pytest.raises(FlenwheelError, match="to_q"):
        train_quietly(flux_config(target_modules=["q_proj", "v_proj"]))


def test_custom_targets_train_only_those_layers(flux_config, train_quietly):
    from safetensors.torch import load_file

    done, _ = train_quietly(flux_config(target_modules=["attn.to_q", "attn.to_v"], max_train_steps=2))
    keys = [k for k in load_file(done["lora_path"]) if k.endswith("lora_A.weight")]
    assert keys and all(".attn.to_q." in k or ".attn.to_v." in k for k in keys)


def test_finished_run_records_current_version_in_project(flux_config, train_quietly, project):
    config = flux_config(
        output_path=str(project.flux_lora_dir("v1")), project_dir=str(project.root), max_train_steps=2
    )
    train_quietly(config)
    from flenwheel.core.data.project import Project

    assert Project.open(project.root).config.current["flux_lora"] == "char_v1"


def test_gradient_checkpointing_gives_the_same_training(flux_config, train_quietly, tmp_path):
    """Checkpointing trades compute for memory; the LoRA it trains must be the same."""
    from safetensors.torch import load_file

    plain, _ = train_quietly(flux_config(output_path=str(tmp_path / "plain"), max_train_steps=3))
    ckpt, _ = train_quietly(flux_config(output_path=str(tmp_path / "ckpt"), max_train_steps=3,
                                        gradient_checkpointing=True))
    a, b = load_file(plain["lora_path"]), load_file(ckpt["lora_path"])
    assert any(t.abs().max() > 0 for k, t in a.items() if "lora_B" in k)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_generation_stage_finds_and_applies_the_trained_version(flux_config, train_quietly, project, tiny_flux):
    """The hand-off to step 1.5: ``char_v1`` / ``latest`` resolve to our file and set_loras applies it."""
    from flenwheel.core.models.character_lora import parse_lora_ref
    from flenwheel.core.models.loras import set_loras
    from flenwheel.core.models.pipelines import load_pipeline

    config = flux_config(output_path=str(project.flux_lora_dir("v1")), output_name="char_lora_v1",
                         project_dir=str(project.root), max_train_steps=2)
    done, _ = train_quietly(config)
    spec = parse_lora_ref("latest:0.8", project)
    assert spec.path == done["lora_path"] and spec.strength == 0.8
    handle = load_pipeline("flux", str(tiny_flux), dtype="fp32", device="cpu")
    refs = set_loras(handle, [spec])
    assert refs[0].sha256 and refs[0].path == done["lora_path"]


@pytest.mark.parametrize("kind", ["flux", "qwen-edit"])
def test_default_bf16_precision_trains_samples_and_saves_bf16(kind, flux_config, qwen_config, train_quietly):
    """Users run the default (bf16 base, fp32 LoRA, autocast, checkpointing); the tiny models do too."""
    from safetensors.torch import load_file

    make = flux_config if kind == "flux" else qwen_config
    extra = {"sample_prompts": ["[trigger]"]} if kind == "flux" else {}
    done, events = train_quietly(make(mixed_precision="bf16", max_train_steps=4, save_every=2, sample_every=4,
                                      gradient_checkpointing=True, save_dtype="bf16", **extra))
    assert done["status"] == "finished" and [e["event"] for e in events].count("sample") == 1
    tensors = load_file(done["lora_path"])
    assert {t.dtype for k, t in tensors.items() if "lora_" in k} == {torch.bfloat16}
    assert any(t.float().abs().max() > 0 for k, t in tensors.items() if "lora_B" in k)


def test_previews_sample_in_eval_mode_and_training_resumes_in_train_mode(flux_config, train_quietly, monkeypatch):
    """With LoRA dropout, a preview drawn in train mode would show a randomly thinned LoRA."""
    from flenwheel.trainers.families.flux import FluxAdapter

    modes: list[tuple[str, bool]] = []
    real_sample, real_loss = FluxAdapter.sample, FluxAdapter.loss

    def sample(self, *args):
        modes.append(("sample", any(m.training for m in self.pipe.transformer.modules())))
        return real_sample(self, *args)

    def loss(self, model, *args):
        modes.append(("loss", model.training))
        return real_loss(self, model, *args)

    monkeypatch.setattr(FluxAdapter, "sample", sample)
    monkeypatch.setattr(FluxAdapter, "loss", loss)
    done, _ = train_quietly(flux_config(lora_dropout=0.5, max_train_steps=4, save_every=10, sample_every=2,
                                        sample_prompts=["[trigger] smiling"]))
    assert done["status"] == "finished"
    assert modes == [("loss", True), ("loss", True), ("sample", False), ("loss", True), ("loss", True),
                     ("sample", False)]
