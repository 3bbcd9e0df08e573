"""The trainer as a separate process: launcher protocol, SIGTERM save, kill -9 at random, torchrun DDP."""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest


def _entry(config_path):
    return [sys.executable, "-m", "flenwheel.trainers", "flux", "--config", str(config_path)]


def _events(text):
    from flenwheel.trainers.protocol import parse_line

    return [e for e in map(parse_line, text.splitlines()) if e]


class _Writes(io.StringIO):
    """A stderr that remembers each write call: a pipe shared by ranks interleaves between calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_log_line_reaches_stderr_in_one_write(monkeypatch):
    from flenwheel.trainers.protocol import Reporter

    stderr = _Writes()
    monkeypatch.setattr(sys, "stderr", stderr)
    Reporter(stream=io.StringIO(), rank=1).log("step 3 local loss 0.5", "debug", all_ranks=True)
    Reporter(stream=io.StringIO()).emit("error", message="out of memory")
    assert stderr.calls == [
        "[flenwheel-train rank 1] debug: step 3 local loss 0.5\n",
        "[flenwheel-train] error: out of memory\n",
    ]


@pytest.mark.slow
def test_launcher_follows_events_and_stop_saves_a_checkpoint(flux_config, config_file, child_env):
    from flenwheel.core.training.launcher import run_training
    from flenwheel.trainers.checkpoint import verify

    config = flux_config(
        max_train_steps=100000, save_every=100000, sample_every=2, sample_prompts=["[trigger]"]
    )
    seen = []

    def should_stop():
        return any(e["event"] == "step" and e["step"] >= 3 for e in seen)

    result = run_training(
        "flux",
        config_file(config),
        config.output_dir,
        on_event=seen.append,
        should_stop=should_stop,
        env=child_env,
    )
    kinds = [e["event"] for e in seen]
    assert set(kinds[:kinds.index("start")]) == {"phase"}  # loading models, caching latents... before start
    assert kinds[-1] == "done" and "sample" in kinds and "checkpoint" in kinds
    step = next(e for e in seen if e["event"] == "step")
    assert {"step", "total", "loss", "lr", "it_s", "eta_s"} <= set(step) and step["total"] == 100000
    assert result.status == "stopped" and result.step >= 3
    assert result.lora_path.endswith(f"step_{result.step:06d}/lora.safetensors")
    assert verify(config.output_dir / "checkpoints" / f"step_{result.step:06d}").step == result.step
    assert result.samples and all(os.path.isfile(p) for p in result.samples)


@pytest.mark.slow
def test_launcher_reports_a_failing_trainer(flux_config, config_file, child_env, tmp_path):
    from flenwheel.core.training.launcher import TrainingFailed, run_training

    config = flux_config(dataset_path=str(tmp_path / "missing"))
    with pytest.raises(TrainingFailed, match="does not exist"):
        run_training("flux", config_file(config), config.output_dir, env=child_env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_exits_cleanly(flux_config, config_file, child_env, train_quietly, sig):
    config = flux_config(max_train_steps=100000, save_every=100000)
    process = subprocess.Popen(
        _entry(config_file(config)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if '"event": "step"' in line and json.loads(line)["step"] >= 2:
            process.send_signal(sig)
            break
    lines += process.stdout.readlines()
    assert process.wait(timeout=60) == 0
    events = _events("".join(lines))
    done = events[-1]
    assert done["event"] == "done" and done["status"] == "stopped" and done["reason"] == sig.name
    saved = config.output_dir / "checkpoints" / f"step_{done['step']:06d}"
    assert done["checkpoint"] == str(saved) and (saved / "lora.safetensors").is_file()
    resumed, events = train_quietly(flux_config(max_train_steps=done["step"] + 2))
    assert next(e for e in events if e["event"] == "start")["resumed_from"] == str(saved)
    assert resumed["step"] == done["step"] + 2


@pytest.mark.slow
def test_kill_9_at_random_moments_never_leaves_a_checkpoint_resume_cannot_load(
    flux_config, config_file, child_env, train_quietly
):
    from flenwheel.trainers.checkpoint import list_checkpoints, newest_valid, verify

    rng = random.Random(1234)
    config = flux_config(max_train_steps=100000, save_every=1, keep_last_n=3)
    path = config_file(config)
    root = config.output_dir / "checkpoints"
    for kill in range(10):
        expected = newest_valid(root)
        process = subprocess.Popen(
            _entry(path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env
        )
        start = json.loads(next(line for line in process.stdout if '"event": "start"' in line))
        assert start["resumed_from"] == (str(expected.path) if expected else None), kill
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        for folder in list_checkpoints(root):
            verify(folder)  # every folder that resume could pick is whole
    newest = newest_valid(root)
    assert newest is not None and newest.step > 0
    done, events = train_quietly(flux_config(max_train_steps=newest.step + 2, save_every=1, keep_last_n=3))
    assert next(e for e in events if e["event"] == "start")["resumed_from"] == str(newest.path)
    assert done["status"] == "finished" and done["step"] == newest.step + 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flux", "qwen-edit"])
def test_torchrun_two_cpu_processes_train_in_sync(flux_config, qwen_config, config_file, child_env, kind):
    config = (flux_config if kind == "flux" else qwen_config)(max_train_steps=4, save_every=4, batch_size=1)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "flenwheel.trainers", kind, "--config", str(config_file(config))]
    result = subprocess.run(command, capture_output=True, text=True, env=child_env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    events = _events(result.stdout)
    assert [e["event"] for e in events].count("start") == 1  # rank 0 alone speaks the protocol
    start = next(e for e in events if e["event"] == "start")
    assert start["processes"] == 2 and events[-1]["event"] == "done"
    local = {rank: [] for rank in ("0", "1")}
    for rank, loss in re.findall(r"rank (\d)\] debug: step \d+ local loss (\S+)", result.stderr):
        local[rank].append(loss)
    assert len(local["0"]) == 4 and len(local["1"]) == 4
    assert local["0"] != local["1"]  # different data
    sums = dict(re.findall(r"rank (\d)\] info: LoRA weights checksum (\S+)", result.stderr))
    # different batches, identical weights: gradients were averaged
    assert sorted(sums) == ["0", "1"] and sums["0"] == sums["1"]
    names = sorted(p.name for p in (config.output_dir / "checkpoints").iterdir())
    assert names == ["step_000004"]  # written once, by rank 0
    assert (config.output_dir / config.lora_filename()).is_file()
