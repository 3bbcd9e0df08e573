"""The preset options ``flenwheel init`` and ``flenwheel run --print-config`` share: ``--gpu`` and the families."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..core.models.registry import CHARACTER, EDITOR, GPU_CARDS, accepted_names


def preset_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --gpu N, --character-base FAMILY and --editor FAMILY (the preset's families; default: the registry's)."""
    options = [
        click.option("--gpu", type=click.Choice([str(card) for card in GPU_CARDS]),
                     help="GB of GPU memory: write the memory options of that card's preset (see README)."),
        click.option("--character-base", type=click.Choice(accepted_names(CHARACTER)),
                     help="Character model family of the preset (default: the first registered)."),
        click.option("--editor", type=click.Choice(accepted_names(EDITOR)),
                     help="Editor model family of the preset (default: the first registered)."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)
