"""Symbolic links planted in a project: never served, written through or deleted through; placement goes on."""

from __future__ import annotations

import shutil

import pytest
import pytest_asyncio
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.data.thumbnails import thumb_path
from flenwheel.core.review.placement import place
from flenwheel.core.review.projects import project_key
from flenwheel.core.review.server import create_app
from flenwheel.core.review.store import ReviewStore

API = "/flenwheel/review"


def _verify_clean(project) -> None:
    result = CliRunner().invoke(cli, ["verify", str(project.root)])
    assert result.exit_code == 0, result.output


@pytest_asyncio.fixture
async def served(enriched, aiohttp_client):
    project, records = enriched(4)
    client = await aiohttp_client(create_app(project, place_delay=0.05))
    return client, project, records, f"{API}/{project_key(project)}"


@pytest.mark.asyncio
async def test_a_cached_thumbnail_linking_out_of_the_project_is_not_served(served, tmp_path):
    client, project, records, base = served
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:secret")
    link = thumb_path(project.cache_dir, records[0].id, 128)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    response = await client.get(f"{base}/thumb/enriched/v1/{records[0].id}", params={"size": "128"})
    body = await response.text()
    assert response.status == 400 and "secret" not in body and "leads outside the project" in body
    _verify_clean(project)


@pytest.mark.asyncio
async def test_a_thumbnail_is_never_written_through_a_symlinked_cache_folder(served, tmp_path):
    client, project, records, base = served
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    folder = project.cache_dir / "thumbs" / "512"
    shutil.rmtree(folder, ignore_errors=True)
    folder.symlink_to(outside, target_is_directory=True)
    response = await client.get(f"{base}/thumb/enriched/v1/{records[1].id}", params={"size": "512"})
    assert response.status == 400 and "thumbs/512" in await response.text()
    assert not any(outside.rglob("*"))
    ok = await client.get(f"{base}/thumb/enriched/v1/{records[1].id}", params={"size": "256"})
    assert ok.status == 200
    _verify_clean(project)


def test_placement_never_deletes_another_records_file_through_a_link(enriched):
    project, records = enriched(3)
    store = ReviewStore(project)
    store.decide(records[1].id, "enriched", "v1", "reject", reason="artifacts")
    place(project, "enriched", "v1")
    dataset = project.dataset("enriched", "v1")
    mine, other = dataset.path / "edit_000.png", dataset.path / "rejected" / "edit_001.png"
    original = mine.read_bytes()
    mine.unlink()
    mine.symlink_to(other)

    store.decide(records[0].id, "enriched", "v1", "good")
    report = place(project, "enriched", "v1")
    assert other.is_file() and not other.is_symlink()
    assert any("edit_000.png was not placed" in p and "symbolic link" in p for p in report.problems)
    assert not (dataset.path / "good" / "edit_000.png").exists()

    mine.unlink()                                   # the user replaces the link, as the problem says
    mine.write_bytes(original)
    assert not place(project, "enriched", "v1").problems
    assert (dataset.path / "good" / "edit_000.png").is_file()
    _verify_clean(project)


def test_one_bad_record_does_not_hold_back_the_others(enriched, tmp_path):
    project, records = enriched(4)
    dataset = project.dataset("enriched", "v1")
    bad = dataset.path / "edit_002.png"
    outside = tmp_path / "outside.png"
    shutil.move(bad, outside)
    bad.symlink_to(outside)
    store = ReviewStore(project)
    for record in records:
        store.decide(record.id, "enriched", "v1", "good")
    report = place(project, "enriched", "v1")
    assert len(report.moved) == 3
    assert [p for p in report.problems if "edit_002.png was not placed" in p and "leads outside" in p]
    placed = sorted(p.name for p in (dataset.path / "good").iterdir())
    assert placed == ["edit_000.png", "edit_001.png", "edit_003.png"]
    assert outside.is_file()
    _verify_clean(project)


def test_an_unpicked_pristine_link_is_reported_and_its_target_kept(synthetic):
    project, records = synthetic(3)
    store = ReviewStore(project)
    for record in records[:2]:
        store.decide(record.id, "synthetic", "v1", "pristine")
    place(project, "synthetic", "v1")
    pristine = project.dataset("pristine", "v1")
    picked = {r.id: pristine.path / r.filename for r in pristine.records}
    link, other = picked[records[0].id], picked[records[1].id]
    original = link.read_bytes()
    link.unlink()
    link.symlink_to(other)

    store.decide(records[0].id, "synthetic", "v1", "reject", reason="artifacts")
    store.decide(records[1].id, "synthetic", "v1", "reject", reason="artifacts")
    report = place(project, "synthetic", "v1")
    assert any(f"{link.name} was not removed" in p and "symbolic link" in p for p in report.problems)
    assert not other.exists() and link.is_symlink()   # the regular pick went, the link's target was its own file
    link.unlink()
    link.write_bytes(original)
    assert not place(project, "synthetic", "v1").problems
    _verify_clean(project)
