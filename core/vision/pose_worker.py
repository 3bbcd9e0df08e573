"""Body landmarks with MediaPipe Pose, run as a script in its own Python environment.

mediapipe 0.10.21 (the last release whose wheel ships ``pose_landmark_full.tflite``, so it runs
offline) needs numpy < 2 and protobuf < 5; FLENwheel's environment has numpy 2 and protobuf 7,
and mediapipe fails there (``FieldDescriptor`` has no ``label``). So ``core/vision/body_pose.py`` starts
this file with the Python of a separate environment and talks to it over pipes. It imports
nothing from FLENwheel (that environment does not have FLENwheel's dependencies).

Protocol, one JSON object per line: the worker first prints ``{"ready": true, "mediapipe": ver}``
(or ``{"error": ...}`` and exits 1); then for every input line ``{"path": FILE}`` it prints
``{"path", "width", "height", "landmarks": [[x, y, z, visibility] x 33] | null}`` or
``{"path", "error"}``. x and y are fractions of the image width and height. End of input ends it.
"""

import json
import sys


def _emit(data):
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _landmarks(pose, cv2, path):
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return {"path": path, "error": "cannot read the image"}
    height, width = image.shape[:2]
    result = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    points = None
    if result.pose_landmarks is not None:
        points = [
            [round(p.x, 5), round(p.y, 5), round(p.z, 5), round(p.visibility, 4)]
            for p in result.pose_landmarks.landmark
        ]
    return {"path": path, "width": width, "height": height, "landmarks": points}


def main():
    try:
        import cv2
        import mediapipe
    except Exception as exc:  # report any import failure to the parent, which explains it
        _emit({"error": f"mediapipe cannot be imported in {sys.executable}: {exc!r}"})
        return 1
    try:
        pose = mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
    except Exception as exc:
        _emit({"error": f"mediapipe {mediapipe.__version__} cannot start its pose model: {exc!r}"})
        return 1
    _emit({"ready": True, "mediapipe": mediapipe.__version__, "python": sys.executable})
    with pose:
        for line in sys.stdin:
            if not line.strip():
                continue
            path = json.loads(line)["path"]
            try:
                _emit(_landmarks(pose, cv2, path))
            except Exception as exc:
                _emit({"path": path, "error": repr(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
