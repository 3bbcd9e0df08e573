"""The identity gate of enrichment: what it needs from a face scorer, and how the real one is found.

Enrichment only needs ``score(image)`` returning something with ``match``, ``distance`` and
``to_json()``; any object of that shape works (the face-recognition engine in ``identity.py``,
or a test double). The real scorer is optional: with ``gate="auto"`` a missing engine or
face_recognition library, or sources without a usable face, turns the gate off with a logged
note; ``gate="on"`` turns the same situations into an error, so nobody believes edits were
checked when they were not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..data.availability import install_line
from ..data.errors import FlenwheelError, MissingDependencyError
from .references import DEFAULT_TOLERANCE

if TYPE_CHECKING:
    from PIL import Image

    from ..data.project import Project

LOG = logging.getLogger("flenwheel.enrich")
GATE_MODES = ("auto", "on", "off")


class IdentityResult(Protocol):
    """One face comparison: did the character survive the edit, and by how much."""

    match: bool
    distance: float | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready details stored as ``scores["identity"]``."""


class IdentityGate(Protocol):
    """Anything that scores an edited image against the character."""

    def score(self, image: Image.Image) -> IdentityResult:
        """Compare the face in ``image`` with the character's reference faces."""


def _scorer_class() -> Any:
    """The identity engine's scorer, or an explanation of why it is unavailable."""
    try:
        from .identity import IdentityScorer, identity_available
    except ImportError as exc:
        raise MissingDependencyError(f"the identity engine is not installed ({exc})") from None
    if not identity_available():
        raise MissingDependencyError(
            "the identity gate needs face_recognition, and face_recognition is not installed (or cannot load "
            f"its models) in this Python; install it with: {install_line('face_recognition')}"
        )
    return IdentityScorer


def resolve_gate(project: Project, mode: str = "auto", tolerance: float = DEFAULT_TOLERANCE,
                 log: Callable[[str], None] | None = None) -> IdentityGate | None:
    """The scorer for ``mode`` (auto/on/off), or None when the gate is off."""
    if mode not in GATE_MODES:
        raise FlenwheelError(f"unknown identity gate mode '{mode}'; use one of {', '.join(GATE_MODES)}")
    if mode == "off":
        return None
    note = log or LOG.warning
    try:
        return _scorer_class().from_project(project, tolerance=tolerance)
    except (FlenwheelError, ValueError) as exc:
        if mode == "on":
            raise FlenwheelError(f"the identity gate was asked for (gate=on) but cannot run: {exc}") from None
        note(f"identity gate off: {exc}")
        return None
