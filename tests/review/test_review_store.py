"""The review log: decisions persist the moment they are made, history is kept, undo is a stack."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from flenwheel.core.review.stages import ReviewError
from flenwheel.core.review.store import ReviewStore


def test_decisions_are_validated_and_current(enriched):
    project, records = enriched(4)
    store = ReviewStore(project)
    good = store.decide(records[0].id, "enriched", "v1", "good", reviewer="ana")
    store.decide(records[1].id, "enriched", "v1", "reject", reason="identity drift")
    store.decide(records[2].id, "enriched", "v1", "needs_correction", reason="  the smile   is wrong ")

    current = store.current("enriched", "v1")
    assert set(current) == {records[0].id, records[1].id, records[2].id}
    assert current[records[0].id].label == "good" and current[records[0].id].reviewer == "ana"
    assert current[records[1].id].reason == "identity_drift"
    assert current[records[1].id].reason_text == "identity drift"
    assert current[records[2].id].reason == "the smile is wrong"
    assert good.dataset == "enriched" and good.version == "v1" and good.at


@pytest.mark.parametrize(
    ("label", "reason", "message"),
    [
        ("pristine", None, "not a label of the enriched review"),
        ("reject", None, "needs a reason"),
        ("needs_correction", "   ", "needs a reason"),
        ("reject", "x" * 600, "keep it under 500"),
    ],
)
def test_bad_decisions_are_refused(enriched, label, reason, message):
    project, records = enriched(2)
    with pytest.raises(ReviewError, match=message):
        ReviewStore(project).decide(records[0].id, "enriched", "v1", label, reason=reason)
    assert ReviewStore(project).history() == []


def test_foreign_ids_versions_and_stages_are_refused(enriched):
    project, records = enriched(2)
    store = ReviewStore(project)
    with pytest.raises(Exception, match="not in enriched/v1"):
        store.decide("a" * 64, "enriched", "v1", "good")
    with pytest.raises(Exception, match="64 lowercase hex"):
        store.decide("../../etc/passwd", "enriched", "v1", "good")
    with pytest.raises(Exception, match="not a dataset version"):
        store.decide(records[0].id, "enriched", "../v1", "good")
    with pytest.raises(ReviewError, match="unknown review stage"):
        store.decide(records[0].id, "source", "v1", "good")


def test_repeating_a_verdict_adds_no_row_and_history_keeps_changes(enriched):
    project, records = enriched(2)
    store = ReviewStore(project)
    image = records[0].id
    store.decide(image, "enriched", "v1", "good")
    store.decide(image, "enriched", "v1", "good")
    store.decide(image, "enriched", "v1", "reject", reason="artifacts")
    rows = store.history("enriched", "v1", image)
    assert [(row.kind, row.label) for row in rows] == [("decide", "good"), ("decide", "reject")]


def test_undo_is_a_stack_and_keeps_the_audit_trail(enriched):
    project, records = enriched(3)
    store = ReviewStore(project)
    a, b = records[0].id, records[1].id
    store.decide(a, "enriched", "v1", "good")
    store.decide(a, "enriched", "v1", "reject", reason="artifacts")
    store.decide(b, "enriched", "v1", "good")

    assert store.undo("enriched", "v1").image_id == b
    assert b not in store.current("enriched", "v1")
    assert store.undo("enriched", "v1").label == "reject"
    assert store.current("enriched", "v1")[a].label == "good"
    assert store.undo("enriched", "v1").label == "good"
    assert store.current("enriched", "v1") == {}
    assert store.undo("enriched", "v1") is None

    kinds = [(row.kind, row.label, row.undoes is not None) for row in store.history()]
    assert kinds.count(("undo", "good", True)) == 2 and len(kinds) == 6


def test_undo_of_one_image_leaves_the_others(enriched):
    project, records = enriched(2)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good")
    store.decide(records[1].id, "enriched", "v1", "good")
    undone = store.undo("enriched", "v1", image_id=records[0].id)
    assert undone.image_id == records[0].id
    assert set(store.current("enriched", "v1")) == {records[1].id}


def test_decisions_survive_kill_9_of_the_deciding_process(enriched):
    project, records = enriched(3)
    script = textwrap.dedent(f"""
        import sys, time
        from flenwheel.core.data.project import Project
        from flenwheel.core.review.store import ReviewStore
        store = ReviewStore(Project.open({str(project.root)!r}))
        store.decide({records[0].id!r}, "enriched", "v1", "good")
        store.decide({records[1].id!r}, "enriched", "v1", "reject", reason="artifacts")
        print("decided", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "decided"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    reader = textwrap.dedent(f"""
        from flenwheel.core.data.project import Project
        from flenwheel.core.review.store import ReviewStore
        current = ReviewStore(Project.open({str(project.root)!r})).current("enriched", "v1")
        print(sorted((d.label, d.reason) for d in current.values()))
    """)
    seen = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True, check=True)
    assert seen.stdout.strip() == "[('good', None), ('reject', 'artifacts')]"


def test_the_database_is_wal_and_a_newer_schema_is_refused(enriched):
    project, records = enriched(1)
    ReviewStore(project).decide(records[0].id, "enriched", "v1", "good")
    with sqlite3.connect(project.review_db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(ReviewError, match="newer FLENwheel"):
        ReviewStore(project).current("enriched", "v1")


def test_a_damaged_database_gives_a_clear_error(enriched):
    project, records = enriched(1)
    project.review_db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ReviewError, match="restore it from a backup"):
        ReviewStore(project).decide(records[0].id, "enriched", "v1", "good")
