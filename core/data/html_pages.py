"""Self-contained HTML reports: Jinja2 templates (autoescaped) beside the module that fills them.

Every report page is one file a user can mail or open offline, so pictures go in as data URIs.
"""

from __future__ import annotations

import base64
import io
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image


def data_uri(image: Image.Image, side: int | None = None, quality: int = 85) -> str:
    """A JPEG data URI of ``image`` (shrunk to ``side`` px when given) for a self-contained page."""
    picture = image.convert("RGB")
    if side:
        picture = picture.copy()
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


@cache
def _environment(folder: str) -> Environment:
    environment = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["pct"] = percent
    return environment


def render_page(folder: Path, template: str, **context: Any) -> str:
    """Render ``folder/template`` with every value escaped."""
    return _environment(str(folder)).get_template(template).render(**context)
