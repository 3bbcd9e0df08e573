"""Every bad input issue 26 lists gets one line and exit 1, and changes nothing on disk.

Each of these gave a traceback (or ran on, failing hours later) in the landed code: a workflow of
100,000 ``[``, configs and graph files that are not UTF-8, a JSON list or a word as a graph, a
caption with bytes that are not text, turn files with impossible numbers or trainer overrides the
trainer would refuse only at the training stage. A stale temp left in ``pristine/`` is reported by
verify and removed by the next placement.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli
from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.project import Project
from flenwheel.core.turn.config import load_turn_config

NOT_UTF8 = b"model: \xff\xfe\n"


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def sourced(tmp_path):
    """A project with one source photo, and a folder of hostile files beside it."""
    project = Project.init(tmp_path / "P", name="P")
    photo = tmp_path / "files" / "photo.png"
    photo.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8), "RGB").save(photo)
    add_sources(project, [photo])
    return project, photo.parent


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_exit_1(result) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0, result.output
    assert result.output.startswith("error: ")


def write(folder: Path, name: str, data: str | bytes) -> str:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


CASES = {
    "train config not UTF-8": lambda p, f: ["train", "flux", "--config", write(f, "c.yaml", NOT_UTF8)],
    "turn config not UTF-8": lambda p, f: ["run", str(p.root), "--config", write(f, "t.yaml", NOT_UTF8)],
    "decisions not UTF-8": lambda p, f: ["run", str(p.root), "--decisions", write(f, "d.yaml", NOT_UTF8)],
    "graph not JSON": lambda p, f: ["items", "save", str(p.root), f"x={f / 'photo.png'}", "--graph",
                                    write(f, "g.json", "hello")],
    "graph not UTF-8": lambda p, f: ["items", "save", str(p.root), f"x={f / 'photo.png'}", "--graph",
                                     write(f, "g.json", NOT_UTF8)],
    "graph is a list": lambda p, f: ["items", "save", str(p.root), f"x={f / 'photo.png'}", "--graph",
                                     write(f, "g.json", "[1, 2]")],
    "strength is a word": lambda p, f: ["items", "save", str(p.root), f"x={f / 'photo.png'}", "--graph",
                                        write(f, "g.json", json.dumps({"1": {"class_type": "LoraLoader", "inputs": {
                                            "lora_name": "a.safetensors", "strength_model": "x"}}}))],
    "caption bytes (add)": lambda p, f: ["source", "add", str(p.root), str(f / "photo.png"),
                                         "--caption", "ohwx_char \udcff\udcfe"],
    "caption bytes (retag)": lambda p, f: ["source", "retag", str(p.root), "photo", "--caption",
                                           "ohwx_char \udcff"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_exit_1_and_changes_nothing(sourced, case):
    project, files = sourced
    args = CASES[case](project, files)
    before = snapshot(project.root)
    one_line_exit_1(invoke(*args))
    assert snapshot(project.root) == before


def test_a_deeply_nested_workflow_is_a_problem_not_a_traceback(tmp_path):
    deep = write(tmp_path, "deep.json", "[" * 100_000)
    result = invoke("comfy", "check", deep)
    assert result.exit_code == 1 and "nests too deeply" in result.output and "Traceback" not in result.output


TURN_BAD = {
    "filter:\n  tolerance: -1\n": "filter.tolerance: -1.0 is outside",
    "review:\n  port: 99999\n": "review.port: 99999 is outside 1-65535",
    "generate:\n  width: 7\n": "generate.width: 7 is outside 64-4096",
    "generate:\n  width: 1000\n": "generate.width: 1000 is not a multiple of 16",
    "enrich:\n  per_source: 10000\n": "enrich.per_source: 10000 is outside 1-20",
    "train:\n  overrides:\n    learning_rat: 0.001\n": "unknown key 'learning_rat' (did you mean 'learning_rate'?)",
    "train:\n  overrides:\n    learning_rate: -1\n": "train.overrides: learning_rate: Input should be greater than 0",
    "editor:\n  overrides:\n    lora_rank: many\n": "editor.overrides: lora_rank: Input should be a valid integer",
}


@pytest.mark.parametrize("text", list(TURN_BAD))
def test_turn_files_are_bounded_and_overrides_checked_before_any_stage(sourced, text):
    project, files = sourced
    path = write(files, "turn.yaml", text)
    before = snapshot(project.root)
    with pytest.raises(Exception, match=re.escape(TURN_BAD[text])):
        load_turn_config(path)
    one_line_exit_1(invoke("run", str(project.root), "--config", path))
    assert snapshot(project.root) == before


def test_model_paths_that_look_like_relative_folders(tmp_path, monkeypatch):
    from flenwheel.core.data.errors import ModelLoadError
    from flenwheel.core.models.pipelines import check_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelLoadError, match=r"models/FLUX.1-dev does not exist \(./models does\)"):
        check_source("models/FLUX.1-dev", "flux")
    (tmp_path / "models" / "FLUX.1-dev").mkdir()
    (tmp_path / "models" / "FLUX.1-dev" / "model_index.json").write_text("{}")
    assert check_source("models/FLUX.1-dev", "flux") == str(tmp_path / "models" / "FLUX.1-dev")
    assert check_source("black-forest-labs/FLUX.1-dev", "flux") == "black-forest-labs/FLUX.1-dev"
    with pytest.raises(ModelLoadError, match="neither an existing flux model folder nor a hub id"):
        check_source("black forest/FLUX 1", "flux")
    turn = write(tmp_path, "turn.yaml", "models:\n  flux: models/FLUX.2-dev\n")
    with pytest.raises(Exception, match="models: flux model folder .*FLUX.2-dev does not exist"):
        load_turn_config(turn)


def test_a_stale_temp_in_pristine_is_reported_then_removed(synthetic_project):
    from flenwheel.core.review.placement import place
    from flenwheel.core.review.store import ReviewStore

    project, records = synthetic_project
    ReviewStore(project).decide(records[0].id, "synthetic", "v1", "pristine")
    place(project, "synthetic", "v1")
    pristine = project.dataset("pristine", "v1")
    stale = pristine.path / f".{records[0].filename}.k1ll9x_q.tmp"  # what a kill -9 mid-copy leaves
    stale.write_bytes(b"half a picture")
    report = pristine.verify()
    assert not report.ok and report.temps == [stale.name]
    listed = invoke("verify", str(project.root))
    assert listed.exit_code == 1 and f"temporary file a killed write left: {stale.name}" in listed.output
    placed = place(project, "synthetic", "v1")
    assert not stale.exists() and any(stale.name in line for line in placed.repaired)
    assert pristine.verify().ok


def test_the_next_image_a_rerun_adds_removes_what_a_killed_write_left(synthetic_project):
    """A generate killed mid-write leaves ``.name.xxxxxxxx.tmp``; the rerun's first commit sweeps it."""
    project, records = synthetic_project
    synthetic = project.dataset("synthetic", "v1")
    stale = synthetic.path / f".{records[0].filename}.k1ll9x_q.tmp"
    stale.write_bytes(b"half a picture")
    assert synthetic.verify().temps == [stale.name]
    synthetic.add_image(Image.new("RGB", (64, 64), (1, 2, 3)), stem="after_the_kill")
    assert not stale.exists() and synthetic.verify().ok


@pytest.fixture
def synthetic_project(tmp_path):
    project = Project.init(tmp_path / "P", name="P")
    dataset = project.create_dataset("synthetic")
    records = []
    with dataset.edit() as edit:
        for i in range(2):
            image = Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
            records.append(edit.add_image(image, stem=f"gen_{i}", prompt=f"photo of {project.subject}", seed=i))
    return project, records
