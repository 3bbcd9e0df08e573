"""``flenwheel generate``, ``compare`` and ``prompts show`` on the tiny model."""

from __future__ import annotations

import json

from click.testing import CliRunner

from flenwheel.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def tiny_args(tiny_flux):
    return [
        "--model",
        tiny_flux,
        "--dtype",
        "fp32",
        "--device",
        "cpu",
        "--width",
        32,
        "--height",
        32,
        "--steps",
        2,
    ]


def test_generate_writes_and_resumes(lora_project, tiny_flux):
    args = [
        "generate",
        lora_project.root,
        "--lora",
        "char_v1:0.9",
        *tiny_args(tiny_flux),
        "--prompt-ids",
        "front,smiling-front,t-pose",
        "--variants",
        2,
    ]
    first = run(*args, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output[first.output.index("{") :])
    assert (report["dataset"], report["generated"], report["planned"]) == ("synthetic/v1", 6, 6)
    assert {c["name"]: c["passed"] for c in report["criteria"]}["metadata tracks prompt and seed"]
    records = lora_project.dataset("synthetic").records
    assert len(records) == 6 and {r.loras[0].strength for r in records} == {0.9}
    assert records[0].model_dump()["lora_version"] == "char_v1"

    again = run(*args)
    assert again.exit_code == 0 and "0 generated, 6 already there (resumed)" in again.output
    assert "FAIL 50+ images: 6 images" in again.output


def test_generate_dry_run_and_errors(lora_project, tiny_flux, tmp_path):
    dry = run(
        "generate", lora_project.root, "--lora", "latest", "--families", "poses", "--variants", 1, "--dry-run"
    )
    assert dry.exit_code == 0 and "6 images planned" in dry.output and "char_v2/char_lora_v2" in dry.output
    assert lora_project.versions("synthetic") == []

    missing = run("generate", lora_project.root, "--lora", "char_v7", *tiny_args(tiny_flux))
    assert missing.exit_code == 1 and "char_v7/char_lora_v7.safetensors does not exist" in missing.output
    assert "char_v1, char_v2" in missing.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("families: {x: {prompts: [{id: a, prompt: 'no token here'}]}}", encoding="utf-8")
    refused = run("generate", lora_project.root, "--lora", "char_v1", "--prompts", bad, "--dry-run")
    assert refused.exit_code == 1 and "'x/a' does not contain [trigger]" in refused.output

    cpu_nf4 = run(
        "generate",
        lora_project.root,
        "--lora",
        "char_v1",
        *tiny_args(tiny_flux),
        "--quantize",
        "nf4",
        "--prompt-ids",
        "front",
        "--variants",
        1,
    )
    assert cpu_nf4.exit_code == 1 and "needs an NVIDIA GPU" in cpu_nf4.output


def test_compare_writes_a_grid(lora_project, tiny_flux, tmp_path):
    out = tmp_path / "v1_vs_v2.png"
    result = run(
        "compare",
        lora_project.root,
        "--lora",
        "char_v1",
        "--lora",
        "char_v2:0.5,1.0",
        "--lora",
        "base",
        *tiny_args(tiny_flux),
        "--prompt-ids",
        "front",
        "--cell-size",
        64,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "columns: char_v1 @1 | char_v2 @0.5 | char_v2 @1 | base" in result.output


def test_prompts_show_lists_and_validates(tmp_path):
    shown = run("prompts", "show", "--families", "poses")
    assert (
        shown.exit_code == 0
        and "t-pose" in shown.output
        and "6 prompts x 4 variants = 24 images" in shown.output
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "families: {x: {prompts: [{id: a, prompt: '[trigger]', expression: grumpy}]}}", encoding="utf-8"
    )
    refused = run("prompts", "show", "--prompts", bad)
    assert refused.exit_code == 1 and "'grumpy' is not a known expression" in refused.output


def test_generate_asks_for_a_lora_or_an_explicit_base_only(lora_project):
    bare = CliRunner().invoke(cli, ["generate", str(lora_project.root), "--dry-run"])
    assert bare.exit_code == 2 and "--lora char_vN" in bare.output and "--base-only" in bare.output
    both = CliRunner().invoke(cli, ["generate", str(lora_project.root), "--lora", "char_v1", "--base-only"])
    assert both.exit_code == 2 and "drop it, or drop --lora" in both.output
    base = run("generate", lora_project.root, "--base-only", "--families", "poses", "--variants", 1, "--dry-run")
    assert base.exit_code == 0 and "6 images planned; LoRAs: none" in base.output
    assert lora_project.versions("synthetic") == []
