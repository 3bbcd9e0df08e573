"""Where a queued graph may read and write: the only places a widget's path may lead inside ComfyUI.

ComfyUI runs whatever graph reaches its ``/prompt`` route, from anyone who can reach the server
(``--listen`` on a LAN or a rented GPU box), so every path a widget holds is untrusted. Inside
ComfyUI a project folder, a reference folder or a YAML file must resolve (symlinks followed)
under ``<ComfyUI output>/flenwheel/`` or under a root the user allowed when ComfyUI started, with
the environment variable ``FLENWHEEL_ALLOWED_ROOTS`` (folders separated by ``os.pathsep``). Model
files resolve through ComfyUI's model folders (``folder_paths``) or those roots; a hub id stays a
hub id. Anything else is refused before it is read or written, naming the variable to set.

The roots are read once, when ComfyUI imports the pack, never from a graph; ComfyUI's own
settings are not used because its ``/settings`` route is as open as ``/prompt``. Outside ComfyUI
(the CLI, Python) the user typed the path in their own shell, and every path is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..core.data.errors import FlenwheelError
from ..core.models.pipelines import looks_like_path

ROOTS_ENV = "FLENWHEEL_ALLOWED_ROOTS"
PROJECTS_FOLDER = "flenwheel"
#: ComfyUI's model folders a model path may lie in (besides the allowed roots).
MODEL_FOLDERS = ("diffusers", "diffusion_models", "checkpoints", "text_encoders", "vae", "loras")


class PlaceError(FlenwheelError):
    """A widget's path leads outside the places the user allowed."""


def roots_from_env(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The extra roots ``FLENWHEEL_ALLOWED_ROOTS`` names (absolute folders only; others are ignored)."""
    parts = (part.strip() for part in environ.get(ROOTS_ENV, "").split(os.pathsep))
    return tuple(Path(os.path.abspath(Path(part).expanduser())) for part in parts
                 if part and Path(part).expanduser().is_absolute())


#: Read once at start (when ComfyUI imports the pack); a graph cannot change it.
STARTUP_ROOTS = roots_from_env(os.environ)


def _output_directory() -> Path | None:
    try:
        import folder_paths
    except ImportError:
        return None
    return Path(folder_paths.get_output_directory())


def allowed_roots() -> tuple[Path, ...] | None:
    """``<output>/flenwheel`` plus the startup roots inside ComfyUI; None (anything goes) outside it."""
    output = _output_directory()
    if output is None:
        return None
    return (Path(os.path.abspath(output / PROJECTS_FOLDER)), *STARTUP_ROOTS)


def _refusal(what: str, path: Path, roots: Iterable[Path]) -> PlaceError:
    shown = ", ".join(str(root) for root in roots)
    return PlaceError(f"{what} {path} is outside the folders FLENwheel may use inside ComfyUI ({shown}); "
                      f"put it there, or allow its folder by starting ComfyUI with {ROOTS_ENV}=<folder>")


def _within(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path`` (``..`` collapsed) lies in a root. Symlinks are not followed: only the user can place
    one (a model folder linked into models/, an output folder on a bigger disk); nothing a graph sends makes one."""
    normal = Path(os.path.abspath(path))
    return any(normal.is_relative_to(os.path.abspath(root)) for root in roots)


def project_folder(value: str) -> Path:
    """A Project node's folder: relative paths start in ComfyUI's output folder and must stay in the allowed roots."""
    text = (value or "").strip()
    if not text:
        raise PlaceError(f"no project folder given; use e.g. {PROJECTS_FOLDER}/my_character")
    path = Path(text).expanduser()
    output = _output_directory()
    if output is None:
        return path.resolve()
    full = path if path.is_absolute() else output / path
    return Path(os.path.abspath(checked_path(str(full), "project folder")))


def _input_directory() -> list[Path]:
    try:
        from folder_paths import get_input_directory
    except ImportError:
        return []
    return [Path(os.path.abspath(get_input_directory()))]


def checked_path(value: str, what: str, read_only: bool = False) -> Path:
    """A file or folder a widget names, refused inside ComfyUI unless it lies in an allowed root.

    What a node only reads (photos, YAML) may also come from ComfyUI's input folder, where users upload.
    """
    path = Path((value or "").strip()).expanduser()
    roots = allowed_roots()
    if roots is None:
        return path
    roots = (*roots, *_input_directory()) if read_only else roots
    if not path.is_absolute():
        path = (_output_directory() or Path.cwd()) / path
    if not _within(path, roots):
        raise _refusal(what, path, roots)
    return path


def _model_roots() -> list[Path]:
    try:
        import folder_paths
    except ImportError:
        return []
    found = []
    for folder in MODEL_FOLDERS:
        try:
            found.extend(Path(os.path.abspath(base)) for base in folder_paths.get_folder_paths(folder))
        except KeyError:
            continue
    return found


def checked_model(value: str, what: str = "model") -> str:
    """A model folder, file or hub id from a widget: paths must lie in ComfyUI's model folders or an allowed root."""
    text = (value or "").strip()
    roots = allowed_roots()
    if roots is None or not text or not looks_like_path(text):
        return text
    path = Path(text).expanduser()
    if not path.is_absolute():
        return text if not path.exists() else checked_model(os.path.abspath(path), what)
    allowed = [*_model_roots(), *roots]
    if not _within(path, allowed):
        raise _refusal(what, path, allowed)
    return text


def user_files(text: str, what: str) -> tuple[str, ...]:
    """A widget's optional YAML file as the tuple the engine takes: () when blank, else the checked path."""
    return (str(checked_path(text, what, read_only=True)),) if (text or "").strip() else ()


def checked_loras(paths: Iterable[str | Path], what: str = "LoRA") -> None:
    """Refuse, before any is read, a LoRA a widget resolved to outside ComfyUI's model folders and the roots."""
    for path in paths:
        checked_model(str(path), what)


def checked_python(value: str) -> str | None:
    """The pose Python a widget names: inside ComfyUI only blank (``FLENWHEEL_POSE_PYTHON``, set at start) is taken.

    It becomes a subprocess's argv[0], so a graph must not choose it; the CLI takes any.
    """
    text = (value or "").strip()
    if text and allowed_roots() is not None:
        raise PlaceError("pose_python cannot be set from a graph (it would choose the program ComfyUI runs); "
                         "leave it blank and start ComfyUI with FLENWHEEL_POSE_PYTHON=<python> instead")
    return text or None
