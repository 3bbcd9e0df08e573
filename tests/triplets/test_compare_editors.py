"""compare-editors on the tiny models with scripted review decisions: versions, table, chart, criteria."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.errors import ModelLoadError
from flenwheel.core.editor.editor_compare import CompareError, parse_editors
from flenwheel.core.models.editor_lora import resolve_lora
from flenwheel.core.review.store import ReviewStore
from flenwheel.core.testing.tiny_lora import make_tiny_lora

FAST = ["--dtype", "fp32", "--device", "cpu", "--steps", "2", "--width", "64", "--height", "64",
        "--vae-pixels", "4096", "--condition-pixels", "3136"]
#: Scripted verdicts per editor (4 edits each): ours needs the fewest corrections.
SCRIPT = {
    "base": ["needs_correction", "needs_correction", "reject", "good"],
    "dx8152": ["needs_correction", "good", "reject", "good"],
    "ours:v1": ["good", "good", "good", "needs_correction"],
}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def editors_project(project, picture, tiny_qwen_edit, tmp_path):
    for i in range(2):
        add_sources(project, images=[(f"src{i}", picture(i))], angle="front")
    ours = make_tiny_lora(tiny_qwen_edit, project.qwen_lora_dir("v1") / "qwen_char_lora_v1.safetensors", seed=1)
    angles = make_tiny_lora(tiny_qwen_edit, tmp_path / "Qwen-Edit-2509-Multiple-angles.safetensors", seed=2)
    return project, ours, angles


def test_compare_editors_runs_reviews_and_reports(editors_project, tiny_qwen_edit):
    project, ours, angles = editors_project
    editors = f"base,dx8152:{angles}:1.25,ours:v1"
    first = run("compare-editors", project.root, "--editors", editors, "--model", tiny_qwen_edit, *FAST,
                "--per-source", "2")
    assert first.exit_code == 0, first.output
    comparison = json.loads((project.benchmarks_dir / "editors" / "v1" / "comparison.json").read_text())
    versions = {e["label"]: e["version"] for e in comparison["editors"]}
    assert versions == {"base": "v1", "dx8152": "v2", "ours:v1": "v3"}
    assert "12 edits are not reviewed yet" in first.output and "ours:v1 needs fewer corrections" in first.output

    plans = {}
    for label, version in versions.items():
        dataset = project.dataset("enriched", version)
        info = dataset.load().info
        assert info["editor"]["label"] == label and info["editor"]["comparison"] == "v1"
        plans[label] = [(r.parents[0], r.family, r.value, r.seed, r.prompt) for r in dataset.records]
    assert plans["base"] == plans["dx8152"] == plans["ours:v1"], "same sources, templates and seeds"
    assert any(family == "multiple_angles" for _, family, *_ in plans["base"]), "the angle LoRA's family for all"
    loras = {label: project.dataset("enriched", v).load().info["loras"] for label, v in versions.items()}
    assert loras["base"] == [] and loras["dx8152"][0]["strength"] == 1.25
    assert loras["ours:v1"][0]["path"] == str(ours.resolve())
    pixels = {label: project.dataset("enriched", v).records[0].id for label, v in versions.items()}
    assert len(set(pixels.values())) == 3, "the LoRAs change the edits"

    store = ReviewStore(project)
    for label, verdicts in SCRIPT.items():
        for record, verdict in zip(project.dataset("enriched", versions[label]).records, verdicts, strict=True):
            store.decide(record.id, "enriched", versions[label], verdict,
                         reason=None if verdict == "good" else "artifacts")
    resumed = run("compare-editors", project.root, "--editors", editors, "--model", tiny_qwen_edit, *FAST,
                  "--per-source", "2", "--name", "v1")
    assert resumed.exit_code == 0 and resumed.output.count("(0 new, 4 already done)") == 3

    report = run("compare-editors", project.root, "--report")
    assert report.exit_code == 0, report.output
    out = report.output
    assert "| base | v1 | 4 | 4 | 25% | 50% | 25% | not measured | - |" in out
    assert "| dx8152 | v2 | 4 | 4 | 50% | 25% | 25% | not measured | - |" in out
    assert "| ours:v1 | v3 | 4 | 4 | 75% | 25% | 0% | not measured | - |" in out
    assert "identity: not measured: no reference image has a usable face" in out
    assert "PASS ours:v1 needs fewer corrections than base: 25% vs 50% of reviewed edits" in out
    assert "FAIL ours:v1 needs fewer corrections than dx8152: 25% vs 25% of reviewed edits" in out
    assert "---- ours:v1 keeps the identity better than base: identity not measured" in out
    folder = project.benchmarks_dir / "editors" / "v1"
    chart = Image.open(folder / "chart.png")
    assert chart.size == (1200, 480)
    assert (folder / "table.md").read_text().startswith("| editor | enriched | edits |")
    data = json.loads((folder / "report.json").read_text())
    ours_row = next(e for e in data["editors"] if e["label"] == "ours:v1")
    assert ours_row["correction_rate"] == 0.25 and ours_row["mean_identity_distance"] is None


def test_editor_lists_and_lora_names(editors_project, tmp_path):
    project, ours, angles = editors_project
    editors = parse_editors([f"base, dx8152:{angles}:1.25", f"ours:v1:0.8+{angles}"], project)
    assert [e.label for e in editors] == ["base", "dx8152", f"ours:v1+{angles.stem}"]
    assert editors[1].loras[0].strength == 1.25 and editors[2].loras[0].strength == 0.8
    assert resolve_lora("ours", project).path == str(ours)
    assert resolve_lora("ours:latest:0.5", project).strength == 0.5
    assert resolve_lora(str(ours.parent), project).path == str(ours), "a models/qwen_lora/vN folder works"
    with pytest.raises(ModelLoadError, match="editor LoRA ours:v2 not found"):
        resolve_lora("ours:v2", project)
    with pytest.raises(ModelLoadError, match="ours:vN names the project's editor LoRA"):
        resolve_lora("ours:v1")
    with pytest.raises(CompareError, match="compare at least two editors"):
        parse_editors(["base"], project)
    with pytest.raises(CompareError, match="two editors share a label"):
        parse_editors(["ours:v1,ours:v1:0.5"], project)


def test_report_without_a_comparison_and_enrich_takes_our_lora(project, picture, tiny_qwen_edit):
    no_run = run("compare-editors", project.root, "--report")
    assert no_run.exit_code == 1 and "no editor comparison yet" in no_run.output
    add_sources(project, images=[("src", picture(5))], angle="front")
    missing = run("enrich", project.root, "--model", tiny_qwen_edit, *FAST, "--lora", "ours:v1", "--gate", "off")
    assert missing.exit_code == 1 and "editor LoRA ours:v1 not found" in missing.output
    make_tiny_lora(tiny_qwen_edit, project.qwen_lora_dir("v1") / "qwen_char_lora_v1.safetensors")
    enriched = run("enrich", project.root, "--model", tiny_qwen_edit, *FAST, "--lora", "ours:v1:0.7",
                   "--per-source", "1", "--gate", "off")
    assert enriched.exit_code == 0, enriched.output
    record = project.dataset("enriched").records[0]
    assert record.loras[0].path.endswith("models/qwen_lora/v1/qwen_char_lora_v1.safetensors")
    assert record.loras[0].strength == 0.7


def test_identity_columns_with_real_faces(project, faces, monkeypatch):
    """Edits of the character vs edits that drifted to another person: measured, stored, compared."""
    from flenwheel.core.data.atomic import atomic_write_json
    from flenwheel.core.data.images import load_image
    from flenwheel.core.editor.editor_report import editor_report

    def small(path):
        image = load_image(path)
        return image.resize((320, round(320 * image.height / image.width)))

    sources = project.create_dataset("source")
    own = [sources.add_image(small(faces / "obama" / name), stem=name) for name in ("obama2.jpg", "obama4.jpg")]
    pictures = {"base": [faces / "biden" / "biden2.jpg", faces / "obama" / "obama.jpg"],
                "ours:v1": [faces / "obama" / "obama3.jpg", faces / "obama" / "obama.jpg"]}
    editors = []
    for number, (label, paths) in enumerate(pictures.items(), start=1):
        dataset = project.create_dataset("enriched", f"v{number}")
        for path in paths:
            record = dataset.add_image(small(path), stem=path.stem, parents=[own[0].id])
            ReviewStore(project).decide(record.id, "enriched", f"v{number}", "good")
        editors.append({"label": label, "loras": [], "version": f"v{number}"})
    atomic_write_json(project.benchmarks_dir / "editors" / "v1" / "comparison.json",
                      {"name": "v1", "editors": editors, "settings": {}, "source_dataset": "source/v1"})

    report = editor_report(project, identity="auto")
    base, ours = report.editors
    assert report.identity_note is None and len(base.distances) == len(ours.distances) == 2
    assert ours.mean_distance < 0.6 < max(base.distances) and ours.identity_kept_rate == 1.0
    assert base.identity_kept_rate == 0.5
    assert "PASS ours:v1 keeps the identity better than base" in "\n".join(report.lines())
    assert all("identity" in r.scores for r in project.dataset("enriched", "v1").records), "scores are stored"

    import flenwheel.core.identity.identity as identity

    monkeypatch.setattr(identity.IdentityScorer, "score", lambda *a, **k: pytest.fail("scored twice"))
    again = editor_report(project, identity="auto")
    assert [s.mean_distance for s in again.editors] == [base.mean_distance, ours.mean_distance]
