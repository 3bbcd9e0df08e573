"""Validating triplets files, and the musubi / ai-toolkit export round trip."""

from __future__ import annotations

import json

import pytest
import yaml

from flenwheel.core.data.errors import DatasetError, FlenwheelError
from flenwheel.core.editor.triplet_check import validate_triplets
from flenwheel.core.editor.triplet_export import export_triplets, read_export, read_version
from flenwheel.core.editor.triplets import build_triplets


def _write(folder, lines):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "triplets.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_validation_names_each_problem_by_line(tmp_path, picture):
    folder = tmp_path / "set"
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        (folder / "img").mkdir(parents=True, exist_ok=True)
        picture(seed).save(folder / "img" / f"{name}.png")
    (folder / "img" / "broken.png").write_bytes(b"not a picture")
    good = {"image_path": "img/b.png", "control_path": "img/a.png", "caption": "make it blue",
            "issue": "identity_drift"}
    path = _write(folder, [
        good,
        good | {"image_path": "img/c.png", "issue": "the ears turned pointy"},
        good | {"image_path": "img/a.png"},                                 # target == source
        good | {"image_path": "img/missing.png"},
        good | {"control_path": "img/broken.png"},
        good | {"caption": "   "},
        good | {"issue": ""},
        good | {"issue": "bad\x07bell"},
        {key: value for key, value in good.items() if key != "control_path"},
        good | {"failed_edit_path": "img/b.png"},                           # target == failed edit
        "[1, 2]",
    ])
    check = validate_triplets(folder)
    errors = "\n".join(check.errors)
    assert check.count == 10 and not check.ok
    assert "line 3: the target is the same image as the source (img/a.png)" in errors
    assert "line 4: image_path (the corrected target) img/missing.png is missing" in errors
    assert "line 5: control_path img/broken.png not an image Pillow can read" in errors
    assert "line 6 has an empty caption (the edit prompt)" in errors
    assert "line 7 has no issue (use one of identity_drift, artifacts" in errors
    assert "line 8 has control characters in its issue" in errors
    assert "line 9 has no control_path (the source image)" in errors
    assert "line 10: the target is the failed edit itself" in errors
    assert "line 11 is not a JSON object" in errors
    assert "line 5 repeats the target of line 1" in check.warnings
    assert check.issues["the ears turned pointy"] == 1
    with pytest.raises(DatasetError, match="problem"):
        check.raise_for_errors()

    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DatasetError, match="line 2 is not JSON"):
        validate_triplets(path)
    _write(folder, [good, good])
    assert validate_triplets(folder).warnings == ["line 2 repeats the target of line 1"]


def _project_with_triplets(corrections, drop_fix, picture, reference_for=()):
    """Triplets of 4 corrections; the edits in ``reference_for`` were made with a second source view."""
    case = corrections(4)
    order = [record.id for record in case.records]
    with case.enriched.edit() as edit:
        for record in edit.records:
            index = order.index(record.id)
            if index in reference_for:
                record.parents = [record.parents[0], case.sources[(index + 1) % 3].id]
    for i in range(4):
        drop_fix(case, f"edit_{i:02d}.png", picture(300 + i))
    return case, build_triplets(case.project, identity="off")


@pytest.mark.parametrize("fmt", ["musubi", "aitoolkit"])
def test_export_round_trip(corrections, drop_fix, picture, tmp_path, fmt):
    case, built = _project_with_triplets(corrections, drop_fix, picture, reference_for=(1,))
    assert built.lines[1]["control_path_1"] == "control_1/v1_edit_01.png"
    original = sorted(read_version(built.jsonl), key=repr)
    assert [len(t.controls) for t in read_version(built.jsonl)] == [1, 2, 1, 1]

    result = export_triplets(case.project, fmt=fmt, out=tmp_path / "out")
    assert result.count == 4
    assert sorted(read_export(tmp_path / "out"), key=repr) == original
    if fmt == "musubi":
        lines = [json.loads(line) for line in (tmp_path / "out" / "triplets.jsonl").read_text().splitlines()]
        assert lines[1]["control_path_1"].endswith("control_1/v1_edit_01.png") and \
            lines[1]["control_path_1"].startswith("/")
        assert "failed_edit_path" not in lines[0] and lines[0]["issue"] == "identity_drift"
        config = (tmp_path / "out" / "dataset_config.toml").read_text()
        assert f'image_jsonl_file = "{tmp_path / "out" / "triplets.jsonl"}"' in config
    else:
        out = tmp_path / "out"
        assert sorted(p.name for p in (out / "target").iterdir()) == [
            "v1_edit_00.png", "v1_edit_00.txt", "v1_edit_02.png", "v1_edit_02.txt", "v1_edit_03.png",
            "v1_edit_03.txt"]
        assert (out / "with_reference" / "control_1" / "v1_edit_01.png").is_file()
        assert (out / "target" / "v1_edit_00.txt").read_text().strip() == built.lines[0]["caption"]
        datasets = yaml.safe_load((out / "aitoolkit_datasets.yaml").read_text())["datasets"]
        assert [len(d["control_path"]) for d in datasets] == [1, 2]
        assert datasets[0]["folder_path"] == str(out / "target") and datasets[0]["caption_ext"] == "txt"

    with pytest.raises(FlenwheelError, match="is not empty; pick another --out or pass --overwrite"):
        export_triplets(case.project, fmt=fmt, out=tmp_path / "out")
    assert export_triplets(case.project, fmt=fmt, out=tmp_path / "out", overwrite=True).count == 4


def test_export_refuses_to_clear_a_foreign_folder_and_relative_musubi_paths(corrections, drop_fix, picture,
                                                                           tmp_path):
    case, built = _project_with_triplets(corrections, drop_fix, picture)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(FlenwheelError, match="does not look like a FLENwheel triplet export"):
        export_triplets(case.project, fmt="musubi", out=tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"
    result = export_triplets(case.project, fmt="musubi", relative=True)
    assert result.folder == case.project.root / "exports" / "qwen_training_v1_musubi"
    first = json.loads((result.folder / "triplets.jsonl").read_text().splitlines()[0])
    assert first["image_path"] == "target/v1_edit_00.png" and first["control_path"] == "control/v1_edit_00.png"
    with pytest.raises(FlenwheelError, match="unknown export format 'kohya'"):
        export_triplets(case.project, fmt="kohya")
