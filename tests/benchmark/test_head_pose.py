"""Head yaw from face landmarks, validated on the shared real photos (frontal, turned, mirrored)."""

from __future__ import annotations

import pytest
from PIL import ImageOps

from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.identity.faces import find_faces
from flenwheel.core.vision.head_pose import YawBuckets, estimate_yaw, head_view

FRONTAL = ["obama/obama.jpg", "obama/obama_small.jpg", "obama/obama_partial_face.jpg", "alex_lacamoire/alex2.jpg",
           "biden/biden2.jpg"]
#: Photos turned about 25-30 degrees by eye, and the side they turn to (the nose points that way).
TURNED = {"obama/obama2.jpg": "half-left", "alex_lacamoire/alex1.png": "half-right"}
MIRRORED = {"half-left": "half-right", "half-right": "half-left", "front": "front"}


def _largest_face_view(image):
    faces = find_faces(image, model="hog")  # dlib's 68 points; the mesh is tested in test_instruments.py
    assert faces, "the shared photo should show a face"
    return head_view(faces[0].landmarks)


@pytest.mark.parametrize("name", FRONTAL)
def test_frontal_photos_read_as_front(photo, name):
    yaw, view = _largest_face_view(photo(name))
    assert view == "front" and abs(yaw) <= 12


@pytest.mark.parametrize(("name", "expected"), sorted(TURNED.items()))
def test_turned_photos_read_as_their_side_and_mirroring_swaps_it(photo, name, expected):
    yaw, view = _largest_face_view(photo(name))
    mirrored_yaw, mirrored_view = _largest_face_view(ImageOps.mirror(photo(name)))
    assert view == expected
    assert mirrored_view == MIRRORED[expected]
    assert yaw * mirrored_yaw < 0 and abs(yaw + mirrored_yaw) < 6


def test_buckets_follow_the_viewer_side_convention():
    buckets = YawBuckets(front_max=20, half_max=50)
    assert [buckets.bucket(y) for y in (0, 19.9, 25, -25, 60, -75)] == [
        "front", "front", "half-left", "half-right", "profile-left", "profile-right"]


def test_bad_limits_and_landmarks_are_refused():
    with pytest.raises(FlenwheelError, match="front_max < half_max"):
        YawBuckets(front_max=40, half_max=30)
    with pytest.raises(FlenwheelError, match="68 dlib landmarks"):
        estimate_yaw([(0, 0)] * 5)
