"""Body pose rules on landmark skeletons and on real MediaPipe output; the isolated worker's errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from flenwheel.core.vision.body_pose import (
    ENV_PYTHON,
    LANDMARKS,
    PoseModel,
    PoseModelError,
    classify,
    open_pose_model,
)

RECORDED = Path(__file__).resolve().parent.parent / "data" / "pose" / "shared_photos_mediapipe.json"


@pytest.mark.parametrize(
    ("name", "pose", "view"),
    [("standing", "standing", "front"), ("t-pose", "t-pose", "front"), ("sitting", "sitting", "side"),
     ("arms-crossed", "unknown", "front")],
)
def test_rules_name_the_pose_and_view(skeletons, name, pose, view):
    found = classify(skeletons[name], 1000, 1000)
    assert (found.pose, found.view) == (pose, view)


def test_hidden_legs_are_not_guessed(skeletons):
    hidden = [list(p) for p in skeletons["standing"]]
    for name in ("left_ankle", "right_ankle"):
        hidden[LANDMARKS[name]][3] = 0.1
    found = classify(hidden, 1000, 1000)
    assert found.pose == "unknown" and "legs not visible" in found.notes[0]


@pytest.mark.parametrize("name", ["obama/obama3.jpg", "biden/biden.jpg"])
def test_recorded_mediapipe_output_of_real_photos(name):
    """Knee-length photos with crossed arms: front view, and no pose claimed (the legs are cut off)."""
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))[name]
    for key in ("landmarks", "mirrored"):
        found = classify(recorded[key], recorded["width"], recorded["height"])
        assert (found.pose, found.view) == ("unknown", "front")
        assert found.notes == ["legs not visible enough to judge (hips, knees or ankles hidden or cut off)"]
        assert found.measures["left_elbow_angle"] < 100 and found.measures["right_elbow_angle"] < 100


def test_a_python_without_mediapipe_fails_with_the_install_line():
    with pytest.raises(PoseModelError, match="mediapipe cannot be imported.*pip install mediapipe==0.10.21"):
        PoseModel(sys.executable)


def test_a_missing_python_fails_clearly(tmp_path):
    with pytest.raises(PoseModelError, match="cannot start the pose Python"):
        PoseModel(str(tmp_path / "no-python"))


def test_without_configuration_pose_is_left_to_people(monkeypatch):
    monkeypatch.delenv(ENV_PYTHON, raising=False)
    assert open_pose_model() is None


@pytest.mark.skipif(not os.environ.get(ENV_PYTHON), reason=f"{ENV_PYTHON} names no mediapipe environment")
def test_configured_mediapipe_reproduces_the_recorded_landmarks(faces):
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))["obama/obama3.jpg"]
    with open_pose_model() as model:
        landmarks, width, height = model.landmarks(faces / "obama" / "obama3.jpg")
    assert (width, height) == (recorded["width"], recorded["height"])
    pairs = zip(landmarks, recorded["landmarks"], strict=True)
    assert max(abs(a - b) for p, q in pairs for a, b in zip(p[:2], q[:2], strict=True)) < 0.02
