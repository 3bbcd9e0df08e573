"""Finding and encoding faces: MediaPipe's BlazeFace + face mesh, or dlib's HOG/CNN; 128-d encodings.

The default detector is ``mediapipe`` (``blazeface.py``: it finds front, half and profile faces;
``face_mesh.py`` gives the 468 points the head view is read from) wherever its runtime and models
are installed, else ``hog``. Whatever found the face, the identity encoding is face_recognition's
128-d encoder run on that face's box: ``encode`` is the one place it is called, so another identity
model plugs in there.

face_recognition is optional and imported on first use, never when the package is imported:
the import takes about a second, loads 100 MB of models, and sets Pillow's
``LOAD_TRUNCATED_IMAGES`` for the whole process (truncated JPEGs would then load with grey fill
instead of failing), so the flag is put back right after the import.

Detection runs on a copy whose longest side is ``detect_side`` (512 by default) and the boxes are
scaled back; encoding runs at full resolution. HOG detection cost grows with the pixel count
while encoding costs the same for any size, so this is 2.5x faster at 1024x1024 and 6x at 1080p,
and distances move by less than 0.08. When the small copy shows no face (a full-body shot where
the face shrinks under the detector's 40 px minimum), detection is retried at full size, so the
speed-up never costs a missed face.

Every input goes through ``upright_rgb``: EXIF orientation applied (a sideways phone photo shows
no face otherwise), and any mode turned into 8-bit RGB by ``images.to_rgb8`` (16-bit greys are
scaled; ``convert('RGB')`` would turn them white). dlib accepts only contiguous uint8 HxWx3 arrays.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ..data.availability import install_line, is_face_mesh_available, is_face_recognition_available
from ..data.errors import FlenwheelError, MissingDependencyError
from ..data.images import pil_to_array, to_rgb8
from ..vision.blazeface import Detection, detect_faces
from ..vision.face_mesh import MIN_MESH_PRESENCE, Mesh, face_mesh

MEDIAPIPE = "mediapipe"
DETECTORS = (MEDIAPIPE, "hog", "cnn")
#: What a user may name: a detector, or ``auto`` for ``default_detector()``.
DETECTOR_CHOICES = ("auto", *DETECTORS)
#: The HOG detector's smallest face at upsample 0; each upsample halves it.
DETECTOR_MIN_FACE = 80
#: BlazeFace boxes narrower than this many image pixels are dropped: too few pixels for an encoding or a
#: mesh to mean anything (a 13 px face encoded 0.70 away from the same person; dlib's HOG stops near 40 px).
BLAZEFACE_MIN_FACE = 20
#: A BlazeFace detection scored under this counts only when the face mesh also sees a face there: at
#: MediaPipe's 0.5 the detector takes some emblems and patterns for faces (a seal behind a speaker scored
#: 0.70), while true faces that score that low are mostly full profiles, which the mesh confirms or not.
CONFIRM_SCORE = 0.75
_EXIF_ORIENTATION = 0x0112

_api: ModuleType | None = None
_import_lock = threading.Lock()
#: dlib's networks keep per-call state; a review server thread and a running graph must not share one call.
_dlib_lock = threading.Lock()

#: Names of the 68 landmark groups in dlib's (iBUG 300-W) point order.
LANDMARK_GROUPS: dict[str, range] = {
    "chin": range(0, 17),
    "left_eyebrow": range(17, 22),
    "right_eyebrow": range(22, 27),
    "nose_bridge": range(27, 31),
    "nose_tip": range(31, 36),
    "left_eye": range(36, 42),
    "right_eye": range(42, 48),
    "outer_lips": range(48, 60),
    "inner_lips": range(60, 68),
}


def face_api() -> ModuleType:
    """The face_recognition module, imported once; MissingDependencyError with the install line if absent."""
    global _api
    with _import_lock:
        if _api is None:
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            try:
                import face_recognition
            except (ImportError, SystemExit) as exc:
                # The original face_recognition_models calls quit() when pkg_resources is missing.
                raise MissingDependencyError(
                    f"identity scoring needs face_recognition, which is not installed or cannot load its "
                    f"models ({exc or 'it exited while importing'}); install it with: "
                    f"{install_line('face_recognition')}"
                ) from None
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
            _api = face_recognition
    return _api


def identity_available() -> bool:
    """Whether face_recognition can be imported (identity nodes, commands and checks depend on it)."""
    if not is_face_recognition_available():
        return False
    try:
        face_api()
    except MissingDependencyError:
        return False
    return True


def default_detector() -> str:
    """``mediapipe`` where its runtime and models are installed (it reads every view), else ``hog``."""
    return MEDIAPIPE if is_face_mesh_available() else "hog"


@dataclass(frozen=True)
class DetectionSettings:
    """How faces are found; part of every cache key, since a different box gives a different encoding.

    ``detect_side`` and ``upsample`` apply to dlib's detectors; BlazeFace always reads a letterboxed
    square of its own size. ``auto`` (or empty) means ``default_detector()``.
    """

    detect_side: int = 512
    model: str = "auto"
    upsample: int = 1

    def __post_init__(self) -> None:
        if self.model in ("", "auto"):
            object.__setattr__(self, "model", default_detector())
        if self.model not in DETECTORS:
            raise FlenwheelError(f"unknown face detector '{self.model}'; use one of {', '.join(DETECTOR_CHOICES)}")
        if self.detect_side != 0 and self.detect_side < 64:
            raise FlenwheelError(
                f"detect_side {self.detect_side} is too small; use 0 (full size) or 64 and up"
            )
        if not 0 <= self.upsample <= 3:
            raise FlenwheelError(f"upsample must be 0..3, got {self.upsample}")

    @property
    def tag(self) -> str:
        """Short text naming these settings, e.g. ``hog512u1`` (``hogfullu1`` at full size), ``mediapipe``."""
        if self.model == MEDIAPIPE:
            return MEDIAPIPE
        return f"{self.model}{self.detect_side or 'full'}u{self.upsample}"

    @property
    def min_face(self) -> int:
        """Smallest face side, in pixels of the detection copy, the detector can find."""
        if self.model == MEDIAPIPE:
            return BLAZEFACE_MIN_FACE
        return DETECTOR_MIN_FACE >> self.upsample


@dataclass
class Face:
    """One detected face. ``box`` is (left, top, right, bottom) in the upright image, ready for ``crop``."""

    box: tuple[int, int, int, int]
    landmarks: list[tuple[int, int]] | None = None
    encoding: np.ndarray | None = field(default=None, repr=False)
    #: MediaPipe's 468-point mesh (detector ``mediapipe`` with landmarks), which the head view is read from.
    mesh: Mesh | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> int:
        return self.width * self.height

    def landmark_groups(self) -> dict[str, list[tuple[int, int]]]:
        """The 68 points by feature (chin, eyes, nose...); empty when landmarks were not computed."""
        if not self.landmarks:
            return {}
        return {name: [self.landmarks[i] for i in indices] for name, indices in LANDMARK_GROUPS.items()}

    def to_json(self, with_encoding: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "box": list(self.box),
            "landmarks": self.landmarks and [list(p) for p in self.landmarks],
        }
        if with_encoding and self.encoding is not None:
            data["encoding"] = [float(v) for v in self.encoding]
        return data


def upright_rgb(image: Image.Image) -> Image.Image:
    """Apply a pending EXIF orientation and convert to 8-bit RGB (see the module docstring)."""
    if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    return to_rgb8(image)


def _css_to_box(
    css: tuple[int, int, int, int], scale: float, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    top, right, bottom, left = (v / scale for v in css)
    width, height = size
    return (max(0, round(left)), max(0, round(top)), min(width, round(right)), min(height, round(bottom)))


def _pixel_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return (max(0, round(left)), max(0, round(top)), min(size[0], round(right)), min(size[1], round(bottom)))


def _hog_fallback(image: Image.Image) -> list[Detection]:
    """dlib HOG's faces as level-eyed detections, for pictures where BlazeFace sees none.

    BlazeFace reads the whole picture at 128 or 192 px, so a face under about 5% of the longest side
    (a 100 px face on a 2000 px canvas) is lost; HOG's full-size retry still finds it. Only where
    face_recognition is installed; such a face rarely shows a profile, which HOG cannot find anyway.
    """
    if not identity_available():
        return []
    boxes = detect(image, DetectionSettings(model="hog"))
    return [Detection(box, ((box[0], (box[1] + box[3]) / 2), (box[2], (box[1] + box[3]) / 2)), 0.0) for box in boxes]


def _blazeface(image: Image.Image, meshes: bool) -> list[tuple[Detection, Mesh | None]]:
    """BlazeFace's faces, largest first, each with its mesh when asked for or needed to confirm it."""
    found = []
    for detection in detect_faces(image):
        if detection.box[2] - detection.box[0] < BLAZEFACE_MIN_FACE:
            continue
        unsure = detection.score < CONFIRM_SCORE
        mesh = face_mesh(image, detection) if meshes or unsure else None
        if unsure and mesh is not None and mesh.presence < MIN_MESH_PRESENCE:
            continue
        found.append((detection, mesh))
    if not found:
        found = [(d, face_mesh(image, d) if meshes else None) for d in _hog_fallback(image)]
    return found


def detect(image: Image.Image, settings: DetectionSettings) -> list[tuple[int, int, int, int]]:
    """Face boxes in an upright RGB image, largest first (dlib: small copy first, full size as fallback)."""
    if settings.model == MEDIAPIPE:
        return [_pixel_box(d.box, image.size) for d, _ in _blazeface(image, meshes=False)]
    api = face_api()
    scale = settings.detect_side / max(image.size) if settings.detect_side else 1.0
    attempts = [scale, 1.0] if scale < 1.0 else [1.0]
    for attempt in attempts:
        copy = image
        if attempt < 1.0:
            size = (max(1, round(image.width * attempt)), max(1, round(image.height * attempt)))
            copy = image.resize(size, Image.Resampling.BILINEAR)
        with _dlib_lock:
            found = api.face_locations(pil_to_array(copy), settings.upsample, settings.model)
        if found:
            boxes = [_css_to_box(css, attempt, image.size) for css in found]
            return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    return []


def encode(array: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """128-d encodings of the faces in ``boxes``, computed on the full-resolution array."""
    api = face_api()
    css = [(top, right, bottom, left) for left, top, right, bottom in boxes]
    with _dlib_lock:
        return [
            np.asarray(e, dtype=np.float64)
            for e in api.face_encodings(array, css, num_jitters=1, model="small")
        ]


def landmarks68(array: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int]]]:
    """The 68 landmark points of each face (dlib order; see LANDMARK_GROUPS), at full resolution."""
    api = face_api()
    import dlib

    predictor = api.api.pose_predictor_68_point
    with _dlib_lock:
        shapes = [predictor(array, dlib.rectangle(*box)) for box in boxes]
    return [[(p.x, p.y) for p in shape.parts()] for shape in shapes]


def find_faces(
    image: Image.Image,
    detect_side: int = 512,
    model: str = "auto",
    upsample: int = 1,
    landmarks: bool = True,
    encodings: bool = False,
    settings: DetectionSettings | None = None,
) -> list[Face]:
    """Every face in ``image``, largest first, with landmarks (mesh or 68 points) and (optionally) encodings.

    Boxes and points are in the pixels of the upright image (EXIF orientation applied), which is
    what a head-pose estimate or a crop needs.
    """
    settings = settings or DetectionSettings(detect_side, model, upsample)
    upright = upright_rgb(image)
    if settings.model == MEDIAPIPE:
        return _mediapipe_faces(upright, landmarks, encodings)
    boxes = detect(upright, settings)
    if not boxes:
        return []
    array = pil_to_array(upright)
    points = landmarks68(array, boxes) if landmarks else [None] * len(boxes)
    codes = encode(array, boxes) if encodings else [None] * len(boxes)
    return [Face(box, pts, code) for box, pts, code in zip(boxes, points, codes, strict=True)]


def _mediapipe_faces(upright: Image.Image, landmarks: bool, encodings: bool) -> list[Face]:
    """BlazeFace boxes, each with its mesh when ``landmarks`` (face_recognition is needed only to encode)."""
    faces = [Face(_pixel_box(d.box, upright.size), mesh=mesh if landmarks else None)
             for d, mesh in _blazeface(upright, meshes=landmarks)]
    if encodings and faces:
        for face, code in zip(faces, encode(pil_to_array(upright), [f.box for f in faces]), strict=True):
            face.encoding = code
    return faces


def small_image_note(image: Image.Image, settings: DetectionSettings) -> str | None:
    """Why a face may have been missed in a very small picture, or None when size is not the issue."""
    if min(image.size) >= 4 * settings.min_face:
        return None
    return (
        f"image is only {image.width}x{image.height} px; faces smaller than about "
        f"{settings.min_face} px are not detected"
    )
