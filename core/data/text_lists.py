"""Lists typed as text: one rule for every "a, b, c" a user writes in a widget, option or config."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[,\n]")


def split_list(text: str | Iterable[str] | None) -> list[str]:
    """The non-empty, stripped items of comma- or newline-separated text (or of several such texts)."""
    if text is None:
        return []
    texts = [text] if isinstance(text, str) else list(text)
    return [item.strip() for piece in texts for item in _SEPARATORS.split(piece) if item.strip()]
