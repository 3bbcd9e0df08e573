"""Every output of an editor comparison says when auto-review (demo only) made the decisions behind it."""

from __future__ import annotations

import json

from PIL import Image

from flenwheel.core.data.atomic import atomic_write_json
from flenwheel.core.editor.editor_compare import COMPARISON_FILE, comparisons_dir
from flenwheel.core.editor.editor_report import editor_report
from flenwheel.core.review.stages import AUTO_REVIEWER
from flenwheel.core.review.store import ReviewStore

NOTE = f"4 of 4 review decisions by {AUTO_REVIEWER}"


def _comparison(project, reviewer: str | None):
    store = ReviewStore(project)
    editors = []
    for index, label in enumerate(("base", "ours:v1")):
        dataset = project.create_dataset("enriched")
        version = dataset.version
        for i in range(2):
            record = dataset.add_image(Image.new("RGB", (32, 32), (40 * index + i, 90, 200)), stem=f"edit{i}")
            store.decide(record.id, "enriched", version, "good" if i else "needs_correction",
                         reason=None if i else "artifacts", **({"reviewer": reviewer} if reviewer else {}))
        editors.append({"label": label, "version": version, "loras": []})
    folder = comparisons_dir(project) / "turn1"
    folder.mkdir(parents=True)
    atomic_write_json(folder / COMPARISON_FILE, {"name": "turn1", "editors": editors})
    return folder


def test_table_chart_and_json_of_an_auto_reviewed_comparison_say_so(project):
    folder = _comparison(project, AUTO_REVIEWER)
    report = editor_report(project, "turn1", identity="off")
    assert report.review_note == NOTE
    assert (folder / "table.md").read_text().startswith(f"**{NOTE}**\n\n| editor |")
    assert json.loads((folder / "report.json").read_text())["review_note"] == NOTE
    assert NOTE in report.lines()
    assert Image.open(folder / "chart.png").size == (1200, 480)


def test_a_person_reviewed_comparison_carries_no_note(project):
    folder = _comparison(project, None)
    report = editor_report(project, "turn1", identity="off")
    assert report.review_note is None
    assert (folder / "table.md").read_text().startswith("| editor |")
    assert json.loads((folder / "report.json").read_text())["review_note"] is None
