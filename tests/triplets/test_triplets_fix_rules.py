"""``flenwheel triplets fix`` follows the same image rules as the review page's upload: GIF, size, pixel limit."""

from __future__ import annotations

from click.testing import CliRunner
from PIL import Image

from flenwheel.cli import cli


def _fix(case, image_id: str, path) -> object:
    return CliRunner().invoke(cli, ["triplets", "fix", str(case.project.root), image_id[:12], str(path)])


def test_triplets_fix_takes_gif_refuses_tiny_fixes_and_bombs(corrections, picture, tmp_path, monkeypatch):
    case = corrections(3)
    picture(31, (64, 64)).save(tmp_path / "fix.gif")
    assert _fix(case, case.records[0].id, tmp_path / "fix.gif").exit_code == 0

    picture(32, (1, 1)).save(tmp_path / "dot.png")
    tiny = _fix(case, case.records[1].id, tmp_path / "dot.png")
    assert tiny.exit_code == 1 and "is 1x1, smaller than the failed edit" in tiny.output

    Image.new("1", (7000, 7000)).save(tmp_path / "bomb.png")
    bomb = _fix(case, case.records[2].id, tmp_path / "bomb.png")
    assert bomb.exit_code == 1 and "above the limit of 40 megapixels" in bomb.output
    assert sorted(p.name for p in (case.enriched.path / "corrections" / "fixed").iterdir()) == ["edit_00.png"]
    assert CliRunner().invoke(cli, ["verify", str(case.project.root)]).exit_code == 0
