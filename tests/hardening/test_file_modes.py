"""Files FLENwheel writes get the mode the umask gives, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

import pytest

from flenwheel.core.data.atomic import atomic_write_json, atomic_write_with


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _recreate_private(path: str) -> None:
    """A writer that replaces the file with its own (as safetensors' save_file does)."""
    os.unlink(path)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def test_atomic_writes_follow_the_umask(tmp_path, umask_022):
    atomic_write_json(tmp_path / "report.json", {"a": 1})
    atomic_write_with(tmp_path / "lora.safetensors", _recreate_private)
    assert _mode(tmp_path / "report.json") == 0o644
    assert _mode(tmp_path / "lora.safetensors") == 0o644
    os.umask(0o077)
    atomic_write_json(tmp_path / "private.json", {})
    assert _mode(tmp_path / "private.json") == 0o600


def test_dataset_images_and_metadata_are_readable_by_others(project, noise_image, umask_022):
    dataset = project.create_dataset("source")
    record = dataset.add_image(noise_image((64, 64)), stem="a")
    assert _mode(dataset.path / record.filename) == 0o644
    assert _mode(dataset.metadata_path) == 0o644
