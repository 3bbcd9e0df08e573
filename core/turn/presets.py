"""Memory presets per GPU card: a commented turn.yaml for a 12-80 GB card, and the README's tables, from one table.

The numbers live in the registry (``MemoryFigures.presets``: one row per family and card). A turn
runs two families, a character base and an editor, and its in-process stages share one set of load
options (``models.*``), so a preset takes, option by option, the more frugal of the two families'
rows; each trainer keeps its own family's row (``train.overrides``, ``editor.overrides``). Where the
editor's LoRA training fits no option the trainer has on that card, the preset switches the editor
flywheel off and says so. ``flenwheel init PROJECT --gpu N``, ``flenwheel run --print-config --gpu N``
and the README's memory tables (``scripts/readme_sections.py``) all read this module, so they
cannot disagree.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..data.errors import FlenwheelError
from ..models.registry import (
    CHARACTER,
    EDITOR,
    GPU_CARDS,
    CardPreset,
    ModelFamily,
    default_family,
    families,
    family,
    measured_figure,
)

#: Each load option's values from least to most memory saved.
FRUGALITY: dict[str, tuple[str, ...]] = {
    "quantize": ("none", "fp8", "int8", "nf4"),
    "quantize_text_encoder": ("none", "fp8", "int8", "nf4"),
    "offload": ("none", "model", "group", "sequential"),
}
#: What each key a preset writes does: the comment beside it in turn.yaml.
KEY_HELP: dict[str, str] = {
    "character_base": "model family of the character LoRA (flenwheel models lists them)",
    "editor": "model family of the editor: enrichment and the editor LoRA",
    # the config keys of the two models' weights (named for the seed's models, not a family dispatch)
    **dict(flux="character base weights: hub id, or a local diffusers folder / single file",
           qwen_edit="editor weights: hub id, or a local diffusers folder"),
    "dtype": "weight and compute precision of enrichment, generation and the model card",
    "quantize": "transformer weights: none (bf16), fp8 (stored in fp8, computed in bf16), nf4 or int8 (bitsandbytes)",
    "quantize_text_encoder": "the big text encoder (T5-XXL / Qwen2.5-VL / Qwen3) in nf4 or int8",
    "offload": "CPU offload: model (one part at a time), group (block by block, nearly free) or sequential (slow)",
    "vae_tiling": "decode images in tiles (less memory at large sizes)",
    "enabled": "the editor flywheel (corrections -> triplets -> editor LoRA) after each model card",
    "train.quantize": "frozen base under the LoRA: none (bf16), fp8 (stored in fp8) or nf4 (QLoRA, NVIDIA only)",
    "optimizer": "adamw, adamw8bit (8-bit moments, bitsandbytes) or prodigy",
    "resolution": "training side in pixels (buckets keep about this many pixels); lower needs less memory",
    "lora_rank": "LoRA rank: capacity and file size; memory grows a little with it",
    "gradient_checkpointing": "recompute activations in the backward pass: much less memory, ~20% slower",
    "batch_size": "images per step; memory grows with it",
    "blocks_to_swap": "transformer blocks kept on the CPU and brought in for their forward/backward (0: none)",
}


def _frugal(first: str | bool, second: str | bool, option: str) -> str | bool:
    if isinstance(first, bool):
        return first or bool(second)
    order = FRUGALITY[option]
    return max(first, second, key=order.index)


def shared_load(character: CardPreset, editor: CardPreset) -> dict[str, Any]:
    """The ``models.*`` load options both families' rows allow: the more frugal value of each option."""
    mine, theirs = character.load.options(), editor.load.options()
    return {key: _frugal(value, theirs[key], key) for key, value in mine.items()}


def _families(character: str | None, editor: str | None) -> tuple[ModelFamily, ModelFamily]:
    return (family(character) if character else default_family(CHARACTER),
            family(editor) if editor else default_family(EDITOR))


def preset_config(gpu_gb: int, character: str | None = None, editor: str | None = None) -> dict[str, Any]:
    """The turn config's memory keys for a card (a mapping ``TurnConfig`` validates)."""
    base, edit = _families(character, editor)
    base_row, edit_row = base.memory.preset(gpu_gb), edit.memory.preset(gpu_gb)
    if base_row.train is None:
        raise FlenwheelError(f"{base.title} LoRA training fits no option on a {gpu_gb} GB card; pick a larger card")
    return {
        "models": {**dict(character_base=base.name, editor=edit.name, flux=base.hub_id, qwen_edit=edit.hub_id),
                   "dtype": "bf16", **shared_load(base_row, edit_row)},
        "train": {"overrides": base_row.train.options()},
        "editor": {"enabled": edit_row.train is not None,
                   "overrides": edit_row.train.options() if edit_row.train else {}},
    }


def row_status(entry: ModelFamily, row: CardPreset) -> str:
    """``estimate``, or the measured peak and speed of the row's options (``benchmarks/gpu_check.py --record``)."""
    parts = []
    for stage, options in (("load", row.load.options()), ("train", row.train.options() if row.train else None)):
        figure = measured_figure(entry.name, stage, options) if options else None
        if figure:
            fits = "fits" if figure["peak_gib"] <= row.gpu_gb else "DOES NOT FIT"
            parts.append(f"{stage} measured {figure['peak_gib']:.1f} GiB peak, {figure['seconds']:.2f} "
                         f"{figure['unit']} on {figure['device']} ({fits})")
        elif options:
            parts.append(f"{stage} estimate")
    return "; ".join(parts)


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _line(key: str, value: Any, indent: int, help_key: str | None = None) -> str:
    text = f"{' ' * indent}{key}: {_scalar(value)}"
    return f"{text:<44} # {KEY_HELP[help_key or key]}"


def preset_yaml(gpu_gb: int, character: str | None = None, editor: str | None = None) -> str:
    """A turn.yaml for the card with every key commented; every key it does not set keeps its default."""
    config = preset_config(gpu_gb, character, editor)
    base, edit = _families(character, editor)
    rows = {"character": base.memory.preset(gpu_gb), "editor": edit.memory.preset(gpu_gb)}
    status = {role: row_status(entry, rows[role]) for role, entry in (("character", base), ("editor", edit))}
    lines = [
        f"# FLENwheel turn config for a {gpu_gb} GB GPU: flenwheel run PROJECT --config THIS_FILE",
        "# Memory options from the table in core/models/registry.py (the README's memory table shows the same).",
        f"# {base.title}: {status['character']}. {edit.title}: {status['editor']}.",
        "# An estimate is worked out from weight sizes, not measured: benchmarks/gpu_check.py measures it.",
        "# Every key not written here keeps its default; flenwheel run --print-config lists them all.",
        "models:                                       # the models and how the in-process stages load them",
        *(_line(key, value, 2) for key, value in config["models"].items()),
        "train:                                        # the character LoRA (steps 1.4 and 1.8)",
        "  overrides:                                 # the character LoRA's trainer (docs/training.md)",
        *(_line(key, value, 4, f"train.{key}" if key == "quantize" else key)
          for key, value in config["train"]["overrides"].items()),
        "editor:                                       # the editor flywheel (steps 2.1-2.3)",
        _line("enabled", config["editor"]["enabled"], 2),
    ]
    if config["editor"]["overrides"]:
        lines.append("  overrides:                                 # the editor LoRA's trainer (docs/training.md)")
        lines += [_line(key, value, 4, f"train.{key}" if key == "quantize" else key)
                  for key, value in config["editor"]["overrides"].items()]
    else:
        lines.insert(-1, f"  # {edit.title} LoRA training fits no trainer option on a {gpu_gb} GB card yet")
    return "\n".join(lines) + "\n"


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(f"{key} {_scalar(value)}" for key, value in options.items())


def memory_table() -> str:
    """The README's per-family table: one row per card and family, with its status."""
    lines = ["| card | family | enrichment, generation, model card (`models.*`) | LoRA training (trainer keys) "
             "| status |", "|---|---|---|---|---|"]
    for gpu_gb in GPU_CARDS:
        for entry in families():
            row = entry.memory.preset(gpu_gb)
            train = _options_text(row.train.options()) if row.train else "does not fit yet"
            lines.append(f"| {gpu_gb} GB | `{entry.name}` | {_options_text(row.load.options())} | {train} "
                         f"| {row_status(entry, row)} |")
    return "\n".join(lines) + "\n"


def preset_row(config: dict[str, Any]) -> list[str]:
    """The memory cells of a turn config (a preset, or one read back from turn.yaml) as the README shows them."""
    models = config["models"]
    editor = config["editor"]
    return [_options_text({key: models[key] for key in FRUGALITY | {"vae_tiling": None}}),
            _options_text(config["train"]["overrides"]),
            _options_text(editor["overrides"]) if editor["enabled"] else "editor flywheel off (training does not fit)"]


def preset_table() -> str:
    """The README's table of what ``flenwheel init --gpu N`` writes for the default families."""
    base, edit = default_family(CHARACTER), default_family(EDITOR)
    lines = [f"| card | `models.*` ({base.name} + {edit.name}) | `train.overrides` | `editor.overrides` |",
             "|---|---|---|---|"]
    for gpu_gb in GPU_CARDS:
        lines.append(f"| {gpu_gb} GB | " + " | ".join(preset_row(preset_config(gpu_gb))) + " |")
    return "\n".join(lines) + "\n"


def annotated_yaml(data: dict[str, Any], notes: dict[str, str], header: list[str]) -> str:
    """``data`` (sections of keys) as YAML with ``notes[section.key]`` as a comment on that key's line."""
    lines = [f"# {line}" if line else "#" for line in header]
    for section, values in data.items():
        lines.append(f"{section}:")
        for line in yaml.safe_dump(values, sort_keys=False, allow_unicode=True).splitlines():
            key = line.split(":", 1)[0]
            note = notes.get(f"{section}.{key}") if not line.startswith((" ", "-")) else None
            lines.append(f"  {line}" if note is None else f"{'  ' + line:<44} # {note}")
    return "\n".join(lines) + "\n"
