"""The command line: every command has help, exit codes follow 0/1/2, messages are actionable."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from flenwheel.cli import cli


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", sorted(_commands(cli)), ids=" ".join)
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_init_add_check_verify(tmp_path, noise_image):
    project = tmp_path / "char"
    result = _run("init", project, "--name", "Ada", "--token", "ohwx_ada")
    assert result.exit_code == 0, result.output
    assert "ohwx_ada person" in result.output
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(5):
        noise_image(seed=index).save(photos / f"p{index}.png")
    result = _run("source", "add", project, photos, "--angle", "front", "--json")
    assert result.exit_code == 0, result.output
    added = json.loads(result.output)["added"]
    assert len(added) == 5 and added[0]["caption"].startswith("photo of ohwx_ada person")
    result = _run("source", "check", project)
    assert result.exit_code == 1
    assert "FAIL" in result.output and "0 of 5 usable" in result.output
    assert "not usable: p0.png: no face" in result.output  # noise is never a face
    assert _run("verify", project).exit_code == 0
    (project / "data/source/v1/p0.png").write_bytes(b"x")
    result = _run("verify", project, "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["datasets"][0]["changed"] == ["p0.png"]


def test_user_errors_exit_1_with_a_message_and_usage_errors_exit_2(tmp_path):
    result = _run("source", "check", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "error:" in result.output and "flenwheel init" in result.output
    assert _run("source", "add").exit_code == 2
    assert _run("source", "add", tmp_path, "x.png", "--angle", "sideways").exit_code == 2


def test_init_twice_is_an_error(tmp_path):
    assert _run("init", tmp_path / "c", "--name", "A").exit_code == 0
    result = _run("init", tmp_path / "c", "--name", "B")
    assert result.exit_code == 1 and "already a FLENwheel project" in result.output
