"""`flenwheel benchmark run|report|compare` and the ModelCardBenchmark node, on the tiny FLUX."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner

from flenwheel.cli import cli
from flenwheel.core.models.character_lora import parse_lora_ref
from flenwheel.core.review.store import ReviewStore
from flenwheel.nodes.benchmark_node import FlenwheelModelCardBenchmark

pytestmark = pytest.mark.usefixtures("no_pose_env")


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def tiny_args(tiny_flux, card_file):
    return ["--card", card_file, "--width", 64, "--height", 64, "--steps", 2, "--model", tiny_flux,
            "--dtype", "fp32", "--device", "cpu"]


def test_cli_run_report_and_compare(lora_character, tiny_flux, small_card_file):
    root = lora_character.root
    dry = run_cli("benchmark", "run", root, "--lora", "char_v1", "--tries", 2, "--dry-run",
                  *tiny_args(tiny_flux, small_card_file))
    assert dry.exit_code == 0 and "2 tries x 3 cells" in dry.output and "front-smiling" in dry.output
    assert not (root / "benchmarks" / "char_v1").exists()
    first = run_cli("benchmark", "run", root, "--lora", "char_v1", "--tries", 1, "--check",
                    *tiny_args(tiny_flux, small_card_file))
    assert first.exit_code == 1, first.output
    assert "first try: 0/3 = 0% (target 80%: NOT met)" in first.output
    assert "fails resolution" in first.output and "not measured: identity, one_face, head_angle, expression" in \
        first.output, "a faceless tiny render fails only what was measured"
    assert (root / "benchmarks" / "char_v1" / "report.html").is_file()
    again = run_cli("benchmark", "run", root, "--lora", "char_v1", "--tries", 1, *tiny_args(tiny_flux, small_card_file))
    assert again.exit_code == 0 and "0 generated, 3 reused" in again.output
    tiny = tiny_args(tiny_flux, small_card_file)
    second = run_cli("benchmark", "run", root, "--lora", "char_v2", "--tries", 1, *tiny)
    assert second.exit_code == 0 and "benchmark/v2 (char_v2)" in second.output
    report = run_cli("benchmark", "report", root, "v2")
    assert report.exit_code == 0 and "human verdicts: 0 of 3 first tries" in report.output
    compared = run_cli("benchmark", "compare", root, "v1", "v2")
    assert compared.exit_code == 0, compared.output
    assert "char_v1 -> char_v2: first try 0% -> 0%, net gain +0 cells" in compared.output
    assert all((root / "benchmarks" / f"compare_v1_v2.{ext}").is_file() for ext in ("html", "png"))


def test_cli_errors_are_one_line(lora_character, tmp_path):
    missing = run_cli("benchmark", "report", lora_character.root, "v7")
    assert missing.exit_code == 1 and "no model card benchmark of char_v7" in missing.output
    bad = run_cli("benchmark", "run", lora_character.root, "--lora", "char_v1", "--checks", "vibes", "--dry-run")
    assert bad.exit_code == 1 and "unknown checks vibes" in bad.output
    nothing = run_cli("benchmark", "compare", lora_character.root, "v1", "v2")
    assert nothing.exit_code == 1 and "results.json does not exist" in nothing.output


def test_node_outputs_card_rate_and_report(lora_character, flux_pipe, small_card_file):
    handle = flux_pipe.with_loras([parse_lora_ref("char_v1", lora_character)])
    node = FlenwheelModelCardBenchmark()
    out = node.benchmark(handle, lora_character, 1, "identity, one_face, resolution", "pass_through",
                         card_file=str(small_card_file), size=64, steps=2)
    card, rate, report_path, summary = out["result"]
    assert card.ndim == 4 and card.shape[0] == 1 and card.shape[-1] == 3
    assert rate == 0.0 and report_path.endswith("benchmarks/char_v1/report.html")
    assert "3 generated" in summary and "first try: 0/3" in summary
    results = json.loads((lora_character.benchmarks_dir / "char_v1" / "results.json").read_text(encoding="utf-8"))
    assert {name: meta["by"] for name, meta in results["checks"].items()} == {
        "identity": "automatic", "one_face": "automatic", "resolution": "automatic",
        "sharpness": "not selected", "head_angle": "not selected", "expression": "not selected",
        "body_pose": "not selected"}


def test_node_wait_mode_waits_for_the_first_try_verdicts(lora_character, flux_pipe, small_card_file):
    handle = flux_pipe.with_loras([parse_lora_ref("char_v1", lora_character)])
    outputs = {}

    def run_node():
        outputs["out"] = FlenwheelModelCardBenchmark().benchmark(
            handle, lora_character, 2, "identity", "wait", card_file=str(small_card_file), size=64, steps=2,
            timeout_minutes=2)

    worker = threading.Thread(target=run_node)
    worker.start()
    store, decided = ReviewStore(lora_character), set()
    deadline = time.monotonic() + 90
    while worker.is_alive() and time.monotonic() < deadline:
        versions = lora_character.versions("benchmark")
        records = lora_character.dataset("benchmark", versions[-1]).records if versions else []
        for record in records:
            if record.model_extra.get("try") == 0 and record.id not in decided:
                store.decide(record.id, "benchmark", "v1", "correct")
                decided.add(record.id)
        time.sleep(0.2)
    worker.join(timeout=30)
    assert not worker.is_alive() and len(decided) == 3
    summary = outputs["out"]["result"][3]
    assert "human verdicts: 3 of 3 first tries, 3 images in all" in summary
