"""Body pose for the model card's T-pose, standing and sitting cells, when a pose model is installed.

The landmarks come from MediaPipe Pose, run in a separate Python environment by
``pose_worker.py`` (mediapipe cannot be imported beside FLENwheel's numpy 2 / protobuf 7; see
that file). Point ``FLENWHEEL_POSE_PYTHON`` (or ``--pose-python``) at that environment's Python;
without it the body pose check is "not applicable" and pose is left to the human verdict.

The pose rules work on the 33 landmarks in pixels (subject's left/right as MediaPipe names them):

- legs *straight*: knee angle (hip-knee-ankle) and hip angle (shoulder-hip-knee) >= 150 degrees;
  legs *seated*: both between 45 and 135 degrees, on at least one visible side;
- arms *horizontal*: each arm raised 65-115 degrees from hanging (shoulder-to-wrist direction)
  with the elbow opened >= 150 degrees; arms *at the sides*: raised <= 30 degrees, elbow >= 140;
- t-pose = straight legs + horizontal arms; standing = straight legs + arms at the sides;
  sitting = seated legs; anything else is "unknown", with the measurements that ruled it out;
- view: shoulder width over torso length >= 0.45 is front, < 0.3 side, between them three-quarter.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..data.errors import FlenwheelError

ENV_PYTHON = "FLENWHEEL_POSE_PYTHON"
WORKER = Path(__file__).resolve().parent / "pose_worker.py"
START_TIMEOUT_S = 120.0
INSTALL_HINT = (
    "python -m venv ~/flenwheel-pose && ~/flenwheel-pose/bin/pip install mediapipe==0.10.21, then set "
    f"{ENV_PYTHON}=~/flenwheel-pose/bin/python"
)
LANDMARKS = {
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
}
SIDES = ("left", "right")


class PoseModelError(FlenwheelError):
    """The configured pose environment cannot run MediaPipe; the message says why and how to fix it."""


@dataclass
class BodyPose:
    """What the rules made of one image's landmarks."""

    pose: str
    view: str | None
    measures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"pose": self.pose, "view": self.view, "measures": self.measures, "notes": self.notes}


def _angle(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    """The angle at ``b`` between ``b->a`` and ``b->c``, in degrees."""
    v1, v2 = (a[0] - b[0], a[1] - b[1]), (c[0] - b[0], c[1] - b[1])
    norm = math.hypot(*v1) * math.hypot(*v2)
    if norm == 0:
        return 0.0
    cosine = max(-1.0, min(1.0, (v1[0] * v2[0] + v1[1] * v2[1]) / norm))
    return math.degrees(math.acos(cosine))


def _raised(shoulder: tuple[float, float], wrist: tuple[float, float]) -> float:
    """How far an arm is raised from hanging straight down (0) through horizontal (90) to up (180)."""
    return math.degrees(math.atan2(abs(wrist[0] - shoulder[0]), wrist[1] - shoulder[1]))


def _leg_state(knee: float, hip: float) -> str:
    if knee >= 150 and hip >= 150:
        return "straight"
    return "seated" if 45 <= knee <= 135 and 45 <= hip <= 135 else "other"


def _arm_state(raised: float, elbow: float) -> str:
    if 65 <= raised <= 115 and elbow >= 150:
        return "horizontal"
    return "down" if raised <= 30 and elbow >= 140 else "other"


def classify(landmarks: list[list[float]], width: int, height: int, min_visibility: float = 0.5) -> BodyPose:
    """Apply the module's rules to 33 MediaPipe landmarks ([x, y, z, visibility], x/y as fractions)."""
    if len(landmarks) != 33:
        raise FlenwheelError(f"body pose needs MediaPipe's 33 landmarks, got {len(landmarks)}")
    point = {name: (landmarks[i][0] * width, landmarks[i][1] * height) for name, i in LANDMARKS.items()}
    seen = {name: landmarks[i][3] >= min_visibility for name, i in LANDMARKS.items()}
    measures: dict[str, float] = {}
    notes: list[str] = []
    legs: dict[str, str] = {}
    for side in SIDES:
        names = [f"{side}_{part}" for part in ("shoulder", "hip", "knee", "ankle")]
        if not all(seen[n] for n in names):
            continue
        knee = _angle(point[names[1]], point[names[2]], point[names[3]])
        hip = _angle(point[names[0]], point[names[1]], point[names[2]])
        measures.update({f"{side}_knee_angle": round(knee, 1), f"{side}_hip_angle": round(hip, 1)})
        legs[side] = _leg_state(knee, hip)
    arms: dict[str, str] = {}
    for side in SIDES:
        names = [f"{side}_{part}" for part in ("shoulder", "elbow", "wrist")]
        if not all(seen[n] for n in names):
            continue
        raised = _raised(point[names[0]], point[names[2]])
        elbow = _angle(point[names[0]], point[names[1]], point[names[2]])
        measures.update({f"{side}_arm_raised": round(raised, 1), f"{side}_elbow_angle": round(elbow, 1)})
        arms[side] = _arm_state(raised, elbow)
    view = _view(point, seen, measures)
    if not legs:
        notes.append("legs not visible enough to judge (hips, knees or ankles hidden or cut off)")
        return BodyPose("unknown", view, measures, notes)
    if "seated" in legs.values():
        return BodyPose("sitting", view, measures, notes)
    if set(legs.values()) != {"straight"}:
        notes.append("legs are neither straight nor seated")
        return BodyPose("unknown", view, measures, notes)
    if len(arms) < 2:
        notes.append("legs straight, but both arms must be visible to tell a T-pose from standing")
        return BodyPose("unknown", view, measures, notes)
    if set(arms.values()) == {"horizontal"}:
        return BodyPose("t-pose", view, measures, notes)
    if set(arms.values()) == {"down"}:
        return BodyPose("standing", view, measures, notes)
    notes.append("legs straight, but the arms are neither horizontal nor at the sides")
    return BodyPose("unknown", view, measures, notes)


def _view(point: dict[str, tuple[float, float]], seen: dict[str, bool], measures: dict[str, float]) -> str | None:
    needed = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    if not all(seen[n] for n in needed[:2]):
        return None
    mid_shoulder = ((point["left_shoulder"][0] + point["right_shoulder"][0]) / 2,
                    (point["left_shoulder"][1] + point["right_shoulder"][1]) / 2)
    mid_hip = ((point["left_hip"][0] + point["right_hip"][0]) / 2, (point["left_hip"][1] + point["right_hip"][1]) / 2)
    torso = math.dist(mid_shoulder, mid_hip)
    if torso == 0:
        return None
    ratio = abs(point["left_shoulder"][0] - point["right_shoulder"][0]) / torso
    measures["shoulder_width_ratio"] = round(ratio, 3)
    return "front" if ratio >= 0.45 else "side" if ratio < 0.3 else "three-quarter"


def configured_python(explicit: str | None = None) -> str | None:
    """The pose environment's Python: the argument, else ``FLENWHEEL_POSE_PYTHON``, else None."""
    value = (explicit or os.environ.get(ENV_PYTHON) or "").strip()
    return str(Path(value).expanduser()) if value else None


class PoseModel:
    """A running pose worker; use as a context manager so the process always ends."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.version = ""
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                [python, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                text=True, bufsize=1,
            )
        except OSError as exc:
            self._stderr.close()
            raise PoseModelError(f"cannot start the pose Python {python}: {exc}; {INSTALL_HINT}") from None
        hello = self._read()
        if not hello.get("ready"):
            self.close()
            raise PoseModelError(f"{hello.get('error', 'the pose worker did not start')}; {INSTALL_HINT}")
        self.version = str(hello.get("mediapipe", ""))

    def __enter__(self) -> PoseModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def name(self) -> str:
        return f"mediapipe {self.version} pose_landmark_full"

    def landmarks(self, path: str | Path) -> tuple[list[list[float]] | None, int, int]:
        """``(33 landmarks or None when no body is found, width, height)`` of an image file."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"path": str(path)}) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise PoseModelError(f"pose model failed on {path}: {answer['error']}")
        return answer.get("landmarks"), int(answer["width"]), int(answer["height"])

    def _read(self) -> dict[str, Any]:
        """The worker's next JSON line (native libraries may print other lines; they are skipped)."""
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self._process.wait(timeout=START_TIMEOUT_S)
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        return {"error": f"the pose worker ended (exit {self._process.returncode}): {' / '.join(tail)}"}

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()


def open_pose_model(python: str | None = None) -> PoseModel | None:
    """A running pose model when an environment is configured, else None (pose left to the human)."""
    chosen = configured_python(python)
    return PoseModel(chosen) if chosen else None
