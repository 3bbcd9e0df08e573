"""The shared vocabulary of views and expressions.

Curation tags sources with it, generation and the model card prompt with it, and the review
page's coverage panel counts it, so all of them must use the same words. The model card's
portrait grid is exactly ``CARD_ANGLES`` x ``CARD_EXPRESSIONS``.

Left and right are the VIEWER's: in a ``half-left`` or ``profile-left`` view the subject's nose
points toward the left edge of the image (the subject turned to their own right). The words
describe the picture, not the person, so a horizontally mirrored photo swaps left and right
(``MIRRORED_ANGLE``). ``half-`` is a three-quarter view (roughly 20-50 degrees of head yaw),
``profile-`` a side view (beyond that); ``core/vision/head_pose.py`` measures it.
"""

from __future__ import annotations

CARD_ANGLES = ("front", "half-left", "profile-left", "half-right", "profile-right")
CARD_EXPRESSIONS = ("neutral", "smiling", "angry", "sad")
CARD_POSES = ("t-pose", "standing", "sitting")

ANGLES = (*CARD_ANGLES, "back", "from-above", "from-below", "unknown")
EXPRESSIONS = (*CARD_EXPRESSIONS, "surprised", "laughing", "serious", "unknown")
POSES = (*CARD_POSES, "walking", "running", "kneeling", "lying", "jumping", "unknown")

#: Mirroring a picture swaps its left and right views.
MIRRORED_ANGLE = {
    "half-left": "half-right",
    "half-right": "half-left",
    "profile-left": "profile-right",
    "profile-right": "profile-left",
}
