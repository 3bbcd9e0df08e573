"""The training nodes as ComfyUI runs them: progress, cancel -> saved LoRA, outputs, and the helper nodes."""

from __future__ import annotations

import pytest
import torch

TINY_EXTRA = (
    "bucket_step: 16\nmax_sequence_length: 32\nsample_steps: 2\ncaption_dropout: 0\nsave_dtype: fp32\n"
)


@pytest.fixture
def sourced_project(project, noise_image):
    sources = project.create_dataset("source")
    with sources.edit() as edit:
        for index in range(3):
            edit.add_image(
                noise_image((64, 64), index), stem=f"s{index}", caption=f"photo of {project.subject}"
            )
    return project


def _inputs(tiny_flux, **changes):
    values = {
        "base_model": str(tiny_flux),
        "version": "latest",
        "max_train_steps": 100000,
        "lora_rank": 4,
        "learning_rate": 1e-3,
        "resolution": 64,
        "batch_size": 1,
        "gradient_checkpointing": False,
        "mixed_precision": "no",
        "quantize": "none",
        "optimizer": "adamw",
        "save_every": 100000,
        "sample_every": 2,
        "seed": 1,
        "sample_prompts": "[trigger] portrait",
        "extra_settings": TINY_EXTRA,
    }
    return {**values, **changes}


def test_flux_node_cancel_saves_and_returns_lora_then_returns_finished_version(
    sourced_project, tiny_flux, monkeypatch, train_quietly
):
    from flenwheel.nodes import _training
    from flenwheel.nodes.train_node import FlenwheelTrainFluxLora
    from flenwheel.trainers.config import load_config

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    progress, pushed = [], []
    monkeypatch.setattr(
        _training,
        "comfy_progress",
        lambda total: lambda done, t, preview: progress.append((done, t, preview is not None)),
    )
    monkeypatch.setattr(_training, "send_event", lambda name, data: pushed.append((name, data)))
    monkeypatch.setattr(_training, "interrupt_requested", lambda: any(p[0] >= 3 for p in progress))

    out = FlenwheelTrainFluxLora().train(sourced_project, **_inputs(tiny_flux))
    lora, plot, samples, summary = out["result"]
    folder = sourced_project.flux_lora_dir("v1")
    assert summary.startswith("stopped at step") and out["ui"]["text"] == [summary]
    assert lora.startswith(str(folder / "checkpoints" / "step_")) and lora.endswith("lora.safetensors")
    assert progress[0][:2] == (1, 100000) and any(p[2] for p in progress)  # previews once a sample exists
    events = [d["event"] for _, d in pushed]
    assert "done" in events and set(events[:events.index("start")]) == {"phase"}  # a card before the first step
    phases = [(d["phase"], d.get("done"), d.get("total")) for _, d in pushed if d["event"] == "phase"]
    assert phases[:2] == [("starting the trainer", None, None), ("loading models", None, None)]
    assert ("caching latents", 3, 3) in phases and phases[-1] == ("loading transformer", None, None)
    assert {name for name, _ in pushed} == {"flenwheel.train"}  # what web/training_tab.js listens to
    assert {d["output"] for _, d in pushed} == {str(folder)} and {d["kind"] for _, d in pushed} == {"flux"}
    assert plot.ndim == 4 and plot.shape[-1] == 3 and plot.shape[1] > 100
    assert samples.shape[1:3] == (64, 64)

    config = load_config(folder / "config.yaml", "flux")
    config.max_train_steps = int(lora.split("step_")[1][:6]) + 1
    train_quietly(config)  # finish it (what a re-queue does, without another process start)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished version must not be trained again")

    from flenwheel.core.training import train_version

    monkeypatch.setattr(train_version, "run_training", must_not_run)
    again = FlenwheelTrainFluxLora().train(
        sourced_project, **_inputs(tiny_flux, max_train_steps=config.max_train_steps)
    )
    assert again["result"][0] == str(folder / "char_lora_v1.safetensors")
    assert again["result"][3].startswith("already trained")


def test_training_log_node_plots_a_run(flux_config, train_quietly):
    from flenwheel.nodes.training_log_node import FlenwheelLoadTrainingLog

    config = flux_config(max_train_steps=6, save_every=3)
    train_quietly(config)
    plot, summary = FlenwheelLoadTrainingLog().load("flux", "latest", run_folder=str(config.output_dir))
    assert isinstance(plot, torch.Tensor) and plot.shape[0] == 1
    assert "6 steps" in summary


def test_loss_plot_uses_the_last_report_of_each_step(tmp_path):
    import json

    from flenwheel.core.training.loss_plot import plot_losses, smooth
    from flenwheel.trainers.protocol import loss_history, read_log

    log = tmp_path / "train_log.jsonl"
    lines = [{"event": "step", "step": s, "loss": 1.0 / s} for s in (1, 2, 3)]
    lines += [{"event": "step", "step": 3, "loss": 0.5}, {"event": "checkpoint", "step": 3}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"event": "st')
    assert loss_history(read_log(log)) == [(1, 1.0), (2, 0.5), (3, 0.5)]
    assert smooth([1.0, 3.0, 5.0], 2) == [1.0, 2.0, 4.0]
    assert plot_losses(log).size == (900, 500)


def test_a_30_step_run_gets_a_moving_average_that_is_not_the_raw_curve_and_a_loss_png(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from flenwheel.core.training.loss_plot import smooth, window_for, write_loss_plot

    losses = [0.5 + 0.3 * ((s * 7919) % 13) / 13 - s / 100 for s in range(1, 31)]
    (tmp_path / "train_log.jsonl").write_text(
        "\n".join(json.dumps({"event": "step", "step": s, "loss": v}) for s, v in enumerate(losses, 1)) + "\n")
    window = window_for(len(losses))
    assert window == 5 and window_for(3) == 3 and window_for(5000) == 100
    averaged = smooth(losses, window)
    assert np.std(np.diff(averaged)) < np.std(np.diff(losses)) / 2  # it smooths: a trend, not the noise again
    path = write_loss_plot(tmp_path, "char_v1 loss")
    assert path == tmp_path / "loss.png" and Image.open(path).size == (900, 500)


def test_nodes_register_with_tooltips():
    from flenwheel.nodes import load_nodes

    classes, names = load_nodes()
    for key in (
        "FlenwheelTrainFluxLora",
        "FlenwheelTrainQwenEditLora",
        "FlenwheelLoadTrainingLog",
        "FlenwheelIterate",
    ):
        node = classes[key]
        assert key in names and node.CATEGORY.startswith("FLENwheel/") and node.DESCRIPTION
        spec = node.INPUT_TYPES()
        for group in spec.values():
            for name, (_, options) in group.items():
                assert options.get("tooltip"), f"{key}.{name} has no tooltip"


def test_iterate_node_needs_pristine_images(sourced_project, tiny_flux):
    from flenwheel.core.data.errors import FlenwheelError
    from flenwheel.nodes.iterate_node import FlenwheelIterate

    with pytest.raises(FlenwheelError, match="no FLUX.1-dev LoRA has been trained yet"):
        FlenwheelIterate().iterate(sourced_project, str(tiny_flux))


@pytest.mark.parametrize(
    ("optimizer", "rate", "expected"),
    [("prodigy", 1e-4, 1.0), ("prodigy", 0.5, 0.5), ("adamw", 1e-4, 1e-4), ("adamw8bit", 3e-4, 3e-4)],
)
def test_learning_rate_left_at_default_follows_the_chosen_optimizer(optimizer, rate, expected):
    from flenwheel.nodes._training import settings
    from flenwheel.trainers.config import parse_config

    overrides = settings("flux", {"optimizer": optimizer, "learning_rate": rate, "extra_settings": ""})
    config = parse_config({"trainer": "flux", "model": "m", "dataset_path": "d", "output_path": "o", **overrides})
    assert config.learning_rate == expected


@pytest.mark.parametrize(("running", "says"), [("0.10.0", True), ("0.11.0", False), (None, False)])
def test_klein_training_says_which_comfyui_loads_its_lora(sourced_project, tiny_flux2_klein, monkeypatch,
                                                        running, says):
    """ComfyUI's own LoraLoader maps every key of a klein LoRA only from 0.11 (test_train_lora_keys.py)."""
    from pathlib import Path

    from flenwheel.core.training.train_version import TrainOutcome
    from flenwheel.nodes import _training
    from flenwheel.nodes.train_node import FlenwheelTrainFluxLora

    lora = Path(sourced_project.root / "char_lora_v1.safetensors")
    monkeypatch.setattr(_training, "send_event", lambda name, data: None)
    monkeypatch.setattr(_training, "comfyui_version", lambda: running)
    monkeypatch.setattr(_training, "train_version", lambda *a, **k: TrainOutcome(lora, "finished", 2, 2, False))
    monkeypatch.setattr(_training, "outputs", lambda folder, path, samples, summary: {"result": (path, summary)})
    out = FlenwheelTrainFluxLora().train(sourced_project, **_inputs(tiny_flux2_klein, base="flux2-klein"))
    _, summary = out["result"]
    note = "needs ComfyUI 0.11 or newer to load this LoRA in ComfyUI's own LoraLoader"
    assert summary.startswith("finished at step 2/2") and (note in summary) == says
    if says:
        assert f"this is ComfyUI {running}" in summary
