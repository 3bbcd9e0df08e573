"""``flenwheel review status|place|history|serve`` as a user runs them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.review.store import ReviewStore


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_status_reports_counts_reasons_and_criteria(enriched):
    project, records = enriched(40)
    store = ReviewStore(project)
    for record in records[:31]:
        store.decide(record.id, "enriched", "v1", "good")
    store.decide(records[31].id, "enriched", "v1", "reject", reason="identity drift")
    store.decide(records[32].id, "enriched", "v1", "needs_correction", reason="hands melted")

    result = _run("review", "status", str(project.root), "--stage", "enriched")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ("enriched/v1 (enriched review): 40 images: 31 good, 1 needs_correction, 1 reject, "
                        "7 pending")
    assert "reasons: identity drift 1, hands melted 1" in result.output
    assert "FAIL all reviewed" in result.output and "33 of 40 decided" in result.output
    assert "PASS at least 30 good" in result.output
    assert "PASS reasons documented for rejections" in result.output

    checked = _run("review", "status", str(project.root), "--check")
    assert checked.exit_code == 1
    data = json.loads(_run("review", "status", str(project.root), "--json").output)
    review = data["reviews"][0]
    assert (review["pending"], review["counts"]["good"], review["passed"]) == (7, 31, False)

    for record in records[33:]:
        store.decide(record.id, "enriched", "v1", "good")
    assert _run("review", "status", str(project.root), "--check").exit_code == 0


def test_status_of_the_pristine_pick_shows_coverage(synthetic):
    project, records = synthetic(6)
    store = ReviewStore(project)
    store.decide(records[0].id, "synthetic", "v1", "pristine", note="fills gap")
    store.decide(records[1].id, "synthetic", "v1", "reject", reason="artifacts")
    output = _run("review", "status", str(project.root), "--stage", "synthetic").output
    assert "FAIL at least 10 pristine" in output and "1 pristine" in output
    assert "notes: fills gap 1" in output
    assert "coverage (pristine picks / candidates)" in output
    front_row = next(line for line in output.splitlines() if line.strip().startswith("front"))
    assert front_row.split()[1:] == ["1/1", "0/1", "0/0", "0/0"]  # images 0 and 5 are front views
    assert "19 of 20 cells have no pick yet" in output
    data = json.loads(_run("review", "status", str(project.root), "--json").output)
    coverage = data["reviews"][0]["coverage"]
    assert coverage["picked"][0][0] == 1 and ["front", "neutral"] not in coverage["gaps"]


def test_place_and_history(enriched):
    project, records = enriched(3)
    store = ReviewStore(project)
    store.decide(records[0].id, "enriched", "v1", "good", reviewer="ana")
    store.decide(records[0].id, "enriched", "v1", "reject", reason="artifacts", reviewer="ana")
    store.undo("enriched", "v1")

    placed = _run("review", "place", str(project.root))
    assert placed.exit_code == 0 and "enriched/v1: 1 moved" in placed.output
    assert (project.dataset("enriched", "v1").path / "good" / "edit_000.png").exists()
    history = _run("review", "history", str(project.root)).output.splitlines()
    assert len(history) == 3
    assert "good; by: ana" in history[0] and "reject; reason: artifacts; by: ana" in history[1]
    assert "undo of #2 (reject)" in history[2]


def test_clear_errors(project, tmp_path):
    nothing = CliRunner().invoke(cli, ["review", "status", str(project.root)])
    assert nothing.exit_code == 1 and "has no reviewable datasets yet" in nothing.output
    missing = CliRunner().invoke(cli, ["review", "status", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    bad_stage = CliRunner().invoke(cli, ["review", "status", str(project.root), "--stage", "source"])
    assert bad_stage.exit_code == 2


def test_serve_help_names_the_defaults():
    result = _run("review", "serve", "--help")
    assert "--host" in result.output and "127.0.0.1" in result.output and "--port" in result.output


def test_serve_on_a_busy_port_says_so_in_one_line(enriched):
    import socket

    project, _ = enriched(2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["review", "serve", str(project.root), "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use; choose another with --port"]
    assert "reviewing" not in result.stdout


def test_serve_prints_the_address_once_it_listens(enriched):
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    project, _ = enriched(2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", "from flenwheel.cli import cli; cli()", "review", "serve",
                                str(project.root), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert f"at http://localhost:{port}/" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/flenwheel/review/stages", timeout=10) as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
