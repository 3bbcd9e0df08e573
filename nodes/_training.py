"""Shared glue of the training nodes: run the trainer process and mirror it into ComfyUI.

ComfyUI runs a prompt's nodes on its worker thread, not on the server's event loop, so a node that
waits does not block HTTP or the websocket; it only holds the queue. The wait here is a poll every
0.2 s on the trainer's event queue (no busy loop), each ``step`` moves the node's progress bar (with
the newest sample as its preview) and is pushed to the browser as a ``flenwheel.train`` event.
Cancel in ComfyUI asks the trainer to save and stop; the node then returns the saved LoRA.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, get_args

from ..core.data.images import images_to_tensor, load_image
from ..core.models.registry import family, family_names
from ..core.training.loss_plot import plot_losses
from ..core.training.train_version import train_version
from ..trainers.config import DEFAULT_LEARNING_RATE, TrainConfig, load_config
from ._comfy import (
    comfy_progress,
    comfyui_version,
    free_comfy_memory,
    interrupt_requested,
    is_interrupt,
    send_event,
)
from ._places import checked_model, checked_path
from ._types import DATASET

#: The training widgets, in their order on the node: the widget type, the slider range a person is
#: offered, and the tooltip. Defaults and choices are not written here: they come from the family's
#: training defaults and the trainer config schema (``TrainConfig``), which validates the values.
TRAINING_WIDGETS: dict[str, tuple[str, dict[str, Any], str]] = {
    "max_train_steps": ("INT", {"min": 1, "max": 100000}, "Optimiser steps to train (the seed's max_train_steps)."),
    "lora_rank": ("INT", {"min": 1, "max": 256}, "LoRA rank (capacity and file size)."),
    "learning_rate": ("FLOAT", {"min": 1e-7, "max": 10.0, "step": 1e-5, "round": False},
                      "Learning rate. Left at its default while another optimiser is chosen, that "
                      "optimiser's own default is used (1.0 for prodigy)."),
    "resolution": ("INT", {"min": 256, "max": 2048, "step": 64},
                   "Training resolution; aspect-ratio buckets keep about this many pixels²."),
    "batch_size": ("INT", {"min": 1, "max": 16}, "Images per step."),
    "gradient_checkpointing": ("BOOLEAN", {}, "Recompute activations: much less VRAM, ~20% slower."),
    "mixed_precision": ("CHOICE", {}, "Compute precision."),
    "quantize": ("CHOICE", {}, "Frozen base under the LoRA: nf4 4-bit (QLoRA, NVIDIA GPU) or fp8 storage "
                 "(half of bf16, close to its losses)."),
    "optimizer": ("CHOICE", {}, "adamw8bit saves VRAM (NVIDIA GPU); prodigy finds its own step size."),
    "save_every": ("INT", {"min": 1, "max": 100000}, "Checkpoint every N steps."),
    "sample_every": ("INT", {"min": 0, "max": 100000}, "Preview images every N steps (0: never)."),
    "seed": ("INT", {"min": 0, "max": 2**31 - 1}, "Training seed (data order, noise)."),
}


def base_model_input(kind: str) -> tuple[str, dict[str, Any]]:
    """The base-model widget of a training node, defaulting to the same hub id the loaders use."""
    entry = family(kind)
    return ("STRING", {"default": entry.hub_id, "tooltip": f"{entry.title} as a diffusers folder or hub id."})


def base_family_input(kind: str) -> tuple[list[str], dict[str, Any]]:
    """The optional choice of base family for a training node (the families of ``kind``'s role)."""
    entry = family(kind)
    return (list(family_names(entry.role)), {"default": entry.name, "tooltip": (
        f"Which {entry.role} base to train on. When base_model is still {entry.title}'s hub id, the chosen "
        "base's own hub id is used instead.")})


def base_source(kind: str, chosen: str | None, base_model: str) -> tuple[str, str | None]:
    """The family to train and its model source: ``base_model``, unless it is the node default's hub id."""
    name = family(chosen).name if chosen else kind
    source = base_model.strip() or None
    if name != kind and source == family(kind).hub_id:
        source = family(name).hub_id
    return name, source


def training_default(kind: str, key: str) -> Any:
    """The family's training default for ``key``, else the trainer config's own default."""
    defaults = family(kind).training_defaults
    if key in defaults:
        return defaults[key]
    if key == "learning_rate":  # the config's default follows the optimiser; a widget needs a number
        return DEFAULT_LEARNING_RATE[training_default(kind, "optimizer")]
    return TrainConfig.model_fields[key].default


def common_inputs(kind: str) -> dict[str, Any]:
    """Widgets both training nodes share (the seed's fields and the usual memory switches)."""
    widgets = {}
    for key, (widget, bounds, tooltip) in TRAINING_WIDGETS.items():
        options = {"default": training_default(kind, key), **bounds, "tooltip": tooltip}
        if widget == "CHOICE":
            widgets[key] = (list(get_args(TrainConfig.model_fields[key].annotation)), options)
        else:
            widgets[key] = (widget, options)
    return widgets


def optional_inputs(dataset_tooltip: str) -> dict[str, Any]:
    return {
        "dataset": (DATASET, {"tooltip": dataset_tooltip}),
        "config_path": (
            "STRING",
            {
                "default": "",
                "tooltip": "Train from this YAML config instead of the project "
                "and widgets (any key of docs/training.md).",
            },
        ),
        "extra_settings": (
            "STRING",
            {
                "default": "",
                "multiline": True,
                "tooltip": "More config keys as YAML lines, e.g. 'caption_dropout: 0.1' or 'blocks_to_swap: 16' "
                "(base blocks kept in CPU memory, for small cards).",
            },
        ),
        "wait_for": (
            DATASET,
            {
                "tooltip": "Train only after the node wired here has run (e.g. a Review Gate's accepted "
                "output in a whole-turn graph). Its images are not added to the training set. A Triplet Writer's "
                "skip (fewer than its min_triplets) makes this node pass through without training.",
            },
        ),
    }


def _rate_left_at_default(kind: str, values: dict[str, Any]) -> bool:
    """The learning-rate widget still shows the default optimiser's rate while another optimiser is chosen.

    A person who switches to prodigy and leaves the rate alone means "its usual rate" (1.0), not
    Adam's 1e-4, at which prodigy barely trains."""
    optimizer, rate = values.get("optimizer"), values.get("learning_rate")
    default_optimizer = training_default(kind, "optimizer")
    if optimizer in (None, default_optimizer) or rate is None:
        return False
    return math.isclose(rate, training_default(kind, "learning_rate"), rel_tol=1e-6)


def settings(kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Widget values plus the ``extra_settings`` YAML, as config overrides."""
    import yaml

    from ..core.data.errors import FlenwheelError

    out = {key: kwargs[key] for key in TRAINING_WIDGETS if key in kwargs}
    if _rate_left_at_default(kind, out):
        del out["learning_rate"]  # the config then takes the chosen optimiser's own default
    extra = (kwargs.get("extra_settings") or "").strip()
    if extra:
        parsed = yaml.safe_load(extra)
        if not isinstance(parsed, dict):
            raise FlenwheelError("extra_settings must be YAML 'key: value' lines")
        out.update(parsed)
    return out


class NodeRun:
    """Follows one trainer process for a node: progress, previews, cancel."""

    def __init__(self, kind: str, output_dir: Path) -> None:
        self.kind = kind
        self.output = str(output_dir)
        self.progress = None
        self.preview = None
        self.cancelled = False

    def announce(self) -> None:
        """Show the run's card at once: the trainer reports its own phases (loading models, caching
        latents) only after its process has imported torch, and its first step minutes later."""
        send_event("flenwheel.train", {"kind": self.kind, "output": self.output, "event": "phase",
                                       "phase": "starting the trainer"})

    def on_event(self, event: dict[str, Any]) -> None:
        send_event("flenwheel.train", {"kind": self.kind, "output": self.output, **event})
        if event["event"] == "start":
            self.progress = comfy_progress(int(event["total"]))
        elif event["event"] == "sample" and event.get("paths"):
            self.preview = load_image(event["paths"][-1])
        elif event["event"] == "step" and self.progress is not None and not self.cancelled:
            try:
                self.progress(int(event["step"]), int(event["total"]), self.preview)
            except Exception as exc:  # ComfyUI's cancel arrives as an exception from the progress hook
                if not is_interrupt(exc):
                    raise
                self.cancelled = True

    def should_stop(self) -> bool:
        self.cancelled = self.cancelled or interrupt_requested()
        return self.cancelled


def train_node(kind: str, config_path: Path) -> tuple[Any, ...]:
    """Run (or reuse) the training a config describes and build the node's outputs."""
    config = fenced(load_config(config_path, kind))
    run = NodeRun(kind, config.output_dir)
    run.announce()
    # the trainer is another process: ComfyUI's cached models must not hold the GPU
    outcome = train_version(kind, config_path, run.on_event, run.should_stop, before_start=free_comfy_memory)
    note = family(kind).comfy_lora_note(comfyui_version())
    summary = outcome.summary() + (f"\n{note}" if note else "")
    return outputs(config.output_dir, str(outcome.lora or ""), outcome.samples, summary)


def fenced(config: TrainConfig) -> TrainConfig:
    """The config, once every path in it lies where a graph may reach (a config file is a widget's too)."""
    checked_model(config.model, "model in the training config")
    checked_path(config.output_path, "output_path in the training config")
    for path in [*config.dataset_path, *[p for spec in config.sample_prompts for p in spec.control_paths]]:
        checked_path(path, "dataset path in the training config")
    if config.project_dir:
        checked_path(config.project_dir, "project_dir in the training config")
    return config


def outputs(output_dir: Path, lora: str, samples: list[str], summary: str) -> dict[str, Any]:
    """LoRA path, loss curve, newest samples, summary - plus the path shown on the node."""
    plot = plot_losses(output_dir, title=output_dir.name)
    pictures = [load_image(p) for p in latest_samples(output_dir, samples)] or [plot]
    return {
        "ui": {"text": [summary]},
        "result": (lora, images_to_tensor([plot]), images_to_tensor(pictures), summary),
    }


def latest_samples(output_dir: Path, reported: list[str]) -> list[str]:
    """The newest step's samples: from this run's events, else from the samples folder."""
    if reported:
        newest = Path(reported[-1]).name.split("_")[1]
        return [p for p in reported if Path(p).name.split("_")[1] == newest]
    files = sorted((output_dir / "samples").glob("step_*.png"))
    if not files:
        return []
    newest = files[-1].name.split("_")[1]
    return [str(p) for p in files if p.name.split("_")[1] == newest]
