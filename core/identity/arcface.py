"""Optional ArcFace-class identity model: an ONNX file the user already keeps for PuLID / InstantID.

ComfyUI users of those nodes keep insightface's ``buffalo_l`` pack in ``ComfyUI/models/insightface/``;
its recognition model ``w600k_r50.onnx`` takes a 1x3x112x112 float face and gives a 512-d embedding.
The card uses it only when ``limits.identity_model`` names such a file and onnxruntime is installed;
otherwise identity is measured with face_recognition and the card's settings say why (``resolve``).

The face is aligned as insightface does (``face_align.norm_crop``): a similarity transform (Umeyama's
least squares, as scikit-image's ``SimilarityTransform.estimate``) maps five points (eye centres, nose
tip, mouth corners, from the detector's landmarks) onto the ``arcface_dst`` template of a 112 px crop.
Pixels are RGB, scaled as ``(x - 127.5) / 127.5`` unless the graph normalises its own input
(insightface's test: ``Sub`` and ``Mul`` among the first nodes), and embeddings are compared by cosine
distance ``1 - cos``. No ArcFace weights can be fetched here, so nothing measured says this model beats
face_recognition at any view; the default tolerance is deepface's published value for ``buffalo_l``.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.availability import install_line, is_onnxruntime_available
from ..data.dataset import DatasetVersion
from ..data.errors import FlenwheelError, MissingDependencyError
from ..data.images import load_image
from .faces import Face, find_faces, upright_rgb
from .identity import IdentityScore, IdentityScorer
from .references import ARCFACE_TOLERANCE, IDENTITY_MODEL_DEFAULT

EXAMPLE_FILE = "w600k_r50.onnx"
#: ComfyUI's folder for insightface packs (``models/insightface/models/buffalo_l/w600k_r50.onnx``).
INSIGHTFACE_FOLDER = Path("models") / "insightface"
CROP = 112
#: insightface's ``arcface_dst``: the five points in a 112x112 aligned crop (image left eye first).
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
#: Five points from dlib's 68 (eyes as the mean of their six points) and from MediaPipe's 468/478 mesh.
_DLIB68 = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (30,), (48,), (54,))
_MESH = ((33, 133), (362, 263), (1,), (61,), (291,))


def comfyui_insightface_folder(pack_root: Path | None = None) -> Path:
    """``ComfyUI/models/insightface`` for a pack installed in ``ComfyUI/custom_nodes/<pack>``."""
    root = pack_root or Path(__file__).resolve().parents[2]
    return root.parent.parent / INSIGHTFACE_FOLDER


def five_points(landmarks: Sequence[tuple[float, float]]) -> np.ndarray:
    """The five alignment points (image-left eye, image-right eye, nose tip, mouth corners) of a face."""
    groups = _DLIB68 if len(landmarks) == 68 else _MESH if len(landmarks) >= 468 else None
    if groups is None:
        raise FlenwheelError(f"cannot align a face from {len(landmarks)} landmarks (68 or a 468-point mesh needed)")
    points = np.asarray(landmarks, dtype=np.float64)
    return np.stack([points[list(group)].mean(axis=0) for group in groups])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + shift that maps ``src`` onto ``dst`` in least squares (Umeyama 1991)."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.array([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(axis=0).sum()
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def align_face(image: Image.Image, points: np.ndarray) -> Image.Image:
    """The 112x112 RGB crop insightface's ``norm_crop`` gives: ``points`` moved onto ``ARCFACE_DST``."""
    matrix = np.vstack([similarity_transform(np.asarray(points, dtype=np.float64), ARCFACE_DST), [0, 0, 1]])
    inverse = np.linalg.inv(matrix)[:2]  # PIL maps output pixels back to input pixels
    # PIL samples at pixel centres (x + 0.5), OpenCV's warpAffine (insightface) at x: shift to OpenCV's grid.
    inverse[:, 2] += 0.5 - 0.5 * inverse[:, :2].sum(axis=1)
    return image.convert("RGB").transform((CROP, CROP), Image.Transform.AFFINE, tuple(inverse.ravel()),
                                          resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


class ArcFaceModel:
    """An ONNX face-recognition model with a 1x3x112x112 input and one embedding output."""

    def __init__(self, path: str | Path) -> None:
        if not is_onnxruntime_available():
            raise MissingDependencyError(f"the ArcFace identity model needs onnxruntime and onnx; install them "
                                         f"with: {install_line('onnxruntime')}")
        import onnx
        import onnxruntime

        self.path = Path(path)
        try:
            graph = onnx.load(str(self.path)).graph
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnx raises its own DecodeError / ONNXRuntimeError kinds
            raise FlenwheelError(f"{self.path} is not a usable ONNX model ({exc})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or shape[1:] != [3, CROP, CROP] or len(outputs) != 1:
            raise FlenwheelError(f"{self.path.name} is not an ArcFace-style model: it needs one 1x3x{CROP}x{CROP} "
                                 f"input and one embedding output (found inputs {[i.shape for i in inputs]})")
        self.input_name = inputs[0].name
        first = [node.op_type for node in graph.node[:8]]
        normalises = "Sub" in first and "Mul" in first
        self.mean, self.std = (0.0, 1.0) if normalises else (127.5, 127.5)

    @property
    def name(self) -> str:
        return self.path.name

    def embed(self, crop: Image.Image) -> np.ndarray:
        """The unit-length embedding of an aligned 112x112 RGB crop."""
        pixels = (np.asarray(crop.convert("RGB"), dtype=np.float32) - self.mean) / self.std
        blob = np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])
        vector = np.asarray(self.session.run(None, {self.input_name: blob})[0], dtype=np.float64).reshape(-1)
        norm = np.linalg.norm(vector)
        return vector / norm if norm > 0 else vector

    def embed_face(self, image: Image.Image, landmarks: Sequence[tuple[float, float]]) -> np.ndarray:
        return self.embed(align_face(image, five_points(landmarks)))


def cosine_distances(references: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    """``1 - cos`` between unit-length rows of ``references`` and ``embedding``: 0 same, 1 unrelated, 2 opposite."""
    return 1.0 - references @ embedding


@dataclass(frozen=True)
class IdentityModelChoice:
    """What measures identity for a card: the ArcFace file (or None for face_recognition), and why."""

    path: Path | None
    note: str

    @property
    def name(self) -> str:
        return self.path.name if self.path else IDENTITY_MODEL_DEFAULT


def _find(value: str, project_root: Path, folders: Sequence[Path]) -> Path | None:
    """The file ``value`` names: as a path, else by its exact name (no wildcards) under ``folders``."""
    try:
        candidate = Path(value).expanduser()
        candidate = candidate if candidate.is_absolute() else project_root / candidate
        if candidate.is_file():
            return candidate
        name = Path(value).name
        if not name:
            return None
        return next((hit for folder in folders if folder.is_dir()
                     for hit in sorted(folder.rglob(glob.escape(name))) if hit.is_file()), None)
    except (OSError, ValueError, RuntimeError):  # a NUL byte, an unreadable folder, a home that does not exist
        return None


def resolve(value: str, project_root: Path, folders: Sequence[Path] = ()) -> IdentityModelChoice:
    """``limits.identity_model`` to a file: a path (absolute or relative to the project), else a file name
    searched under ``folders`` (default: ``ComfyUI/models/insightface`` beside the pack). Missing file or
    runtime: face_recognition measures identity instead, and the note says what to install or where to
    put the file."""
    if value == IDENTITY_MODEL_DEFAULT:
        return IdentityModelChoice(None, "face_recognition 128-d encodings")
    folders = list(folders) or [comfyui_insightface_folder()]
    found = _find(value, project_root, folders)
    fallback = "identity measured with face_recognition instead"
    if found is None:
        where = " or ".join(str(folder) for folder in folders)
        return IdentityModelChoice(None, f"identity model {value} not found: put {Path(value).name} in {where} "
                                         f"(or give its path); {fallback}")
    if not is_onnxruntime_available():
        return IdentityModelChoice(None, f"identity model {found.name} needs onnxruntime: install it with: "
                                         f"{install_line('onnxruntime')}; {fallback}")
    return IdentityModelChoice(found, f"ArcFace-class ONNX model {found}")


class ArcFaceScorer:
    """The sources' ArcFace embeddings, scoring a face by its cosine distance to the closest one.

    It scores against the same references as the face_recognition scorer it is built from (outliers and
    rejected sources already left out), so both measure the character against the same photos."""

    def __init__(self, model: ArcFaceModel, base: IdentityScorer, names: list[str], matrix: np.ndarray,
                 tolerance: float) -> None:
        if not names:
            raise FlenwheelError("no reference image has a face the ArcFace model can align")
        self.model, self.base, self.names, self.matrix, self.tolerance = model, base, names, matrix, tolerance

    @staticmethod
    def face_points(face: Face) -> list[tuple[float, float]] | None:
        """The points to align ``face`` by: dlib's 68 landmarks, or MediaPipe's 468-point mesh."""
        if face.landmarks:
            return list(face.landmarks)
        return [(float(x), float(y)) for x, y, _ in face.mesh.points] if face.mesh is not None else None

    @classmethod
    def from_dataset(cls, model: ArcFaceModel, base: IdentityScorer, dataset: DatasetVersion,
                     tolerance: float = ARCFACE_TOLERANCE) -> ArcFaceScorer:
        """Embed the largest face of every reference of ``base`` (found again with its landmarks)."""
        wanted = {ref.image_id for ref in base.references.references}
        names, rows = [], []
        for record in dataset.records:
            if record.id not in wanted:
                continue
            image = load_image(dataset.image_path(record))
            faces = find_faces(image, landmarks=True, settings=base.settings)
            points = cls.face_points(faces[0]) if faces else None
            if points:
                names.append(record.filename)
                rows.append(model.embed_face(upright_rgb(image), points))
        return cls(model, base, names, np.stack(rows) if rows else np.zeros((0, 512)), tolerance)

    def score_faces(self, image: Image.Image, faces: Sequence[Face], face_count: int | None = None) -> IdentityScore:
        """The largest face's cosine distance to the closest reference, as an ``IdentityScore``."""
        count = len(faces) if face_count is None else face_count
        common = {"tolerance": self.tolerance, "policy": "largest", "face_count": count,
                  "detector": f"{self.base.settings.tag}+{self.model.name}",
                  "references": self.base.references.fingerprint, "reference_count": len(self.names)}
        empty = {"distance": None, "mean_distance": None, "closest_reference": None}
        if not faces:
            return IdentityScore(**empty, **common, problem="no face")
        points = self.face_points(faces[0])
        if not points:
            return IdentityScore(**empty, **common, problem="no landmarks to align the face")
        distances = cosine_distances(self.matrix, self.model.embed_face(upright_rgb(image), points))
        closest = int(np.argmin(distances))
        return IdentityScore(distance=round(float(distances[closest]), 4),
                             mean_distance=round(float(distances.mean()), 4),
                             closest_reference=self.names[closest], box=faces[0].box, **common)
