"""User-facing errors.

Every error a user can fix (a wrong path, an unreadable image, a newer project file) is a
``FlenwheelError``: the CLI prints its message and exits 1, nodes re-raise it so ComfyUI shows
the message in the node's error box. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FlenwheelError(Exception):
    """An error whose message tells the user what went wrong and what to do."""


class ProjectError(FlenwheelError):
    """The project folder or its ``flenwheel.json`` is missing, malformed or from a newer schema."""


class DatasetError(FlenwheelError):
    """A dataset version cannot be read or changed as asked (finished, duplicate, malformed)."""


class ImageLoadError(FlenwheelError):
    """An image file cannot be decoded; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"cannot read image {self.path}: {problem}")


class ModelLoadError(FlenwheelError):
    """A model, LoRA or tokenizer cannot be found or loaded; the message names the path or id."""


class MissingDependencyError(FlenwheelError):
    """An optional library is not installed; the message says how to install it."""
