"""One key, one meaning: no review stage gives a label a key the review page already uses for moving around.

The page's fixed keys live in web/review/keys.js (FIXED); a label key that is also a fixed key did two
things at once (the benchmark's "n" marked Incorrect and jumped to the next pending item, and the help
listed both).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flenwheel.core.review.stages import REVIEW_STAGES

KEYS_JS = Path(__file__).resolve().parents[2] / "web" / "review" / "keys.js"


def fixed_keys() -> set[str]:
    block = re.search(r"const FIXED = \{(.*?)\n\};", KEYS_JS.read_text(encoding="utf-8"), re.S).group(1)
    keys = set(re.findall(r'^\s+(?:"([^"]+)"|(\w+)):\s*\{', block, re.M))
    return {quoted or bare for quoted, bare in keys}


def test_the_fixed_keys_are_read_from_the_page():
    assert {"n", "z", "ArrowLeft", " ", "?", "Escape"} <= fixed_keys()


@pytest.mark.parametrize("stage", REVIEW_STAGES.values(), ids=list(REVIEW_STAGES))
def test_every_label_key_means_one_thing(stage):
    label_keys = [key for label in stage.labels for key in label.keys]
    if stage.notes:
        label_keys.append("f")  # the accept-with-note key keys.js adds for stages with notes
    assert len(label_keys) == len(set(label_keys)), f"{stage.name}: a key labels twice: {label_keys}"
    clashes = set(label_keys) & fixed_keys()
    assert not clashes, f"{stage.name}: {sorted(clashes)} also move around the page (web/review/keys.js)"
