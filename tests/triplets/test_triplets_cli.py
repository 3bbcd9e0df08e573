"""``flenwheel triplets ...`` end to end on the tiny Qwen-Edit model: review -> re-run -> accept -> fix -> build."""

from __future__ import annotations

import json

from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.review.store import ReviewStore

FAST = ["--dtype", "fp32", "--device", "cpu", "--steps", "2", "--width", "64", "--height", "64",
        "--vae-pixels", "4096", "--condition-pixels", "3136"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_the_editor_flywheel_from_the_command_line(project, picture, tiny_qwen_edit, tmp_path):
    root = project.root
    for i in range(3):
        add_sources(project, images=[(f"src{i}", picture(i))], angle="front")
    assert run("enrich", root, "--model", tiny_qwen_edit, *FAST, "--per-source", "2", "--gate", "off").exit_code == 0
    store = ReviewStore(project)
    edits = project.dataset("enriched").records
    for i, record in enumerate(edits):
        store.decide(record.id, "enriched", "v1", "needs_correction" if i < 3 else "good",
                     reason=["identity_drift", "artifacts", "the hair turned blue"][i] if i < 3 else None)
    assert run("review", "place", root).exit_code == 0

    status = run("triplets", "status", root)
    assert status.exit_code == 0 and "3 corrections in enriched/v1; 0 have a target" in status.output
    assert "no target yet" in status.output and "issue: the hair turned blue" in status.output
    none_yet = run("triplets", "build", root)
    assert none_yet.exit_code == 1 and "no triplets to write" in none_yet.output

    rerun = run("triplets", "rerun", root, "--all", "--seeds", "1", "--gate", "off", "--dtype", "fp32",
                "--device", "cpu")
    assert rerun.exit_code == 0, rerun.output
    assert rerun.output.count("1 re-run(s) in reruns/v1") == 3 and "flenwheel triplets accept" in rerun.output
    candidates = project.dataset("reruns", "v1").records
    assert [c.model for c in candidates] == [str(tiny_qwen_edit)] * 3, "re-runs use the enriched version's model"
    accepted = run("triplets", "accept", root, candidates[0].id[:10], candidates[1].filename)
    assert accepted.exit_code == 0 and accepted.output.count(": accept") == 2

    picture(99, (128, 128)).save(tmp_path / "fixed.jpg", quality=95)
    fixed = run("triplets", "fix", root, edits[2].id[:12], tmp_path / "fixed.jpg")
    assert fixed.exit_code == 0 and "stored enriched/v1/corrections/fixed/" in fixed.output
    assert "scaled from 128x128 to 64x64" in fixed.output
    picture(98, (96, 64)).save(tmp_path / "wide.png")
    wrong = run("triplets", "fix", root, edits[1].id[:12], tmp_path / "wide.png")
    assert wrong.exit_code == 1 and "(aspect 1.500) but the failed edit" in wrong.output

    built = run("triplets", "build", root, "--json")
    assert built.exit_code == 0, built.output
    report = json.loads(built.output)
    assert report["dataset"] == "qwen_training/v1" and report["count"] == 3 and report["waiting"] == []
    sources = sorted(line["target_source"] for line in map(json.loads, open(report["path"]).read().splitlines()))
    assert sources == ["manual", "rerun", "rerun"]
    assert run("triplets", "build", root, "--check").exit_code == 1, "fewer than 10 triplets fails --check"

    check = run("triplets", "check", root)
    assert check.exit_code == 0 and "3 triplets, 0 error(s)" in check.output
    exported = run("triplets", "export", root, "--format", "aitoolkit", "--out", tmp_path / "ait")
    assert exported.exit_code == 0 and "3 triplets exported" in exported.output
    assert len(list((tmp_path / "ait" / "control").iterdir())) == 3
    assert run("triplets", "export", root, "--format", "nope").exit_code == 2


def test_check_exits_1_on_a_broken_file_and_usage_errors_exit_2(tmp_path, project):
    (tmp_path / "triplets.jsonl").write_text(json.dumps({"image_path": "t.png", "caption": ""}) + "\n")
    broken = run("triplets", "check", tmp_path / "triplets.jsonl")
    assert broken.exit_code == 1 and "line 1 has no control_path" in broken.output
    neither = run("triplets", "rerun", project.root)
    assert neither.exit_code == 2 and "name the edits to re-run, or pass --all" in neither.output
    assert run("triplets", "rerun", project.root, "abc", "--all").exit_code == 2
    nothing = run("triplets", "rerun", project.root, "--all")
    assert nothing.exit_code == 1 and "the project has no enriched dataset yet" in nothing.output
