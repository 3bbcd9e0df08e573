"""Fixtures for the trainer tests: small datasets, tiny-model configs, and a quiet in-process runner.

Training tests run torch on one thread: on a small shared CPU, two OpenMP threads fighting other
processes make each tiny matrix product ~100x slower, and the numbers are no more exact either way.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZES = [(64, 64), (80, 48), (48, 80), (64, 64)]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every trainer test runs in-process models on one thread (``one_torch_thread``)."""


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for trainer subprocesses: offline, one thread, this worktree's package first."""
    root = str(Path(__file__).resolve().parents[3])
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }


def _picture(seed: int, size: tuple[int, int]) -> Image.Image:
    """A smooth two-colour gradient plus a little noise: learnable, unlike pure noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, width)[None, :, None]
    array = a * (1 - ramp) + b * ramp + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def caption_folder(tmp_path) -> Path:
    """Four images of mixed aspect ratios with ai-toolkit style .txt captions using [trigger]."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index, size in enumerate(SIZES):
        _picture(index, size).save(folder / f"img_{index}.png")
        (folder / f"img_{index}.txt").write_text(f"photo of [trigger], pose {index}", encoding="utf-8")
    return folder


@pytest.fixture
def triplets_file(tmp_path) -> Path:
    """Four (source, edit prompt, target) triplets in the musubi-tuner JSONL layout, relative paths."""
    folder = tmp_path / "qwen_training" / "v1"
    (folder / "source").mkdir(parents=True)
    (folder / "target").mkdir()
    lines = []
    for index in range(4):
        source = _picture(10 + index, (64, 64))
        target = Image.fromarray(255 - np.asarray(source))
        source.save(folder / "source" / f"{index}.png")
        target.save(folder / "target" / f"{index}.png")
        lines.append(
            json.dumps(
                {
                    "image_path": f"target/{index}.png",
                    "control_path": f"source/{index}.png",
                    "caption": "invert the colours",
                    "issue": "wrong colours",
                    "improvement": "inverted",
                    "source_id": f"s{index}",
                    "target_id": f"t{index}",
                }
            )
        )
    path = folder / "triplets.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY = {
    "lora_rank": 4,
    "resolution": 64,
    "bucket_step": 16,
    "mixed_precision": "no",
    "gradient_checkpointing": False,
    "max_sequence_length": 32,
    "learning_rate": 2e-3,
    "sample_every": 0,
    "sample_steps": 2,
    "caption_dropout": 0.0,
    "save_dtype": "fp32",
}


@pytest.fixture
def flux_config(tiny_flux, caption_folder, tmp_path):
    from flenwheel.trainers.config import parse_config

    def make(**overrides):
        raw = {
            "trainer": "flux",
            "model": str(tiny_flux),
            "dataset_path": str(caption_folder),
            "output_path": str(tmp_path / "flux_out"),
            "instance_token": "ohwx_char",
            "max_train_steps": 10,
            "save_every": 5,
            **TINY,
            **overrides,
        }
        return parse_config(raw)

    return make


@pytest.fixture
def qwen_config(tiny_qwen_edit, triplets_file, tmp_path):
    from flenwheel.trainers.config import parse_config

    def make(**overrides):
        raw = {
            "trainer": "qwen-edit",
            "model": str(tiny_qwen_edit),
            "dataset_path": str(triplets_file),
            "output_path": str(tmp_path / "qwen_out"),
            "max_train_steps": 6,
            "save_every": 3,
            "condition_pixels": 56 * 56,
            **TINY,
            **overrides,
        }
        return parse_config(raw)

    return make


@pytest.fixture
def klein_config(tiny_flux2_klein, caption_folder, tmp_path):
    from flenwheel.trainers.config import parse_config

    def make(**overrides):
        raw = {
            "trainer": "flux2-klein",
            "model": str(tiny_flux2_klein),
            "dataset_path": str(caption_folder),
            "output_path": str(tmp_path / "klein_out"),
            "instance_token": "ohwx_char",
            "max_train_steps": 6,
            "save_every": 3,
            **TINY,
            **overrides,
        }
        return parse_config(raw)

    return make


@pytest.fixture
def z_image_config(tiny_z_image, caption_folder, tmp_path):
    from flenwheel.trainers.config import parse_config

    def make(**overrides):
        raw = {
            "trainer": "z-image",
            "model": str(tiny_z_image),
            "dataset_path": str(caption_folder),
            "output_path": str(tmp_path / "z_image_out"),
            "instance_token": "ohwx_char",
            "max_train_steps": 6,
            "save_every": 3,
            **TINY,
            **overrides,
        }
        return parse_config(raw)

    return make


@pytest.fixture
def qwen_2511_config(qwen_config, tiny_qwen_edit_2511, tmp_path):
    def make(**overrides):
        return qwen_config(**{"trainer": "qwen-edit-2511", "model": str(tiny_qwen_edit_2511),
                              "output_path": str(tmp_path / "qwen_2511_out"), **overrides})

    return make


@pytest.fixture
def train_quietly():
    """Train in this process; returns (done event, all events) without printing the protocol."""
    from flenwheel.trainers.protocol import Reporter, parse_line
    from flenwheel.trainers.run import train

    def run(config):
        stream = io.StringIO()
        done = train(config, Reporter(stream=stream))
        events = [e for e in map(parse_line, stream.getvalue().splitlines()) if e]
        return done, events

    return run


def write_config(config, path: Path) -> Path:
    from flenwheel.trainers.config import save_config

    return save_config(config, path)


@pytest.fixture
def config_file(tmp_path):
    """Save a TrainConfig as YAML and return its path."""

    def make(config, name: str = "config.yaml") -> Path:
        return write_config(config, tmp_path / name)

    return make


@pytest.fixture(scope="session")
def loras(tmp_path_factory, tiny_flux, tiny_flux2_klein, tiny_qwen_edit, tiny_qwen_edit_2511):
    """One trained LoRA per model family (alpha != rank, to exercise the scale handling):
    {kind: (model folder, LoRA file)}."""
    import io

    from flenwheel.trainers.config import parse_config
    from flenwheel.trainers.protocol import Reporter
    from flenwheel.trainers.run import train

    root = tmp_path_factory.mktemp("keys")
    images = root / "images"
    images.mkdir()
    for index in range(2):
        Image.new("RGB", (64, 64), (60 * index, 120, 200)).save(images / f"{index}.png")
        (images / f"{index}.txt").write_text("photo of [trigger]")
        (root / "targets").mkdir(exist_ok=True)
        Image.new("RGB", (64, 64), (200, 60 * index, 20)).save(root / "targets" / f"{index}.png")
    (root / "triplets.jsonl").write_text(
        "\n".join(
            json.dumps(
                {"image_path": f"targets/{i}.png", "control_path": f"images/{i}.png", "caption": "recolour"}
            )
            for i in range(2)
        )
    )
    common = {
        "lora_rank": 4,
        "lora_alpha": 8,
        "resolution": 64,
        "bucket_step": 16,
        "mixed_precision": "no",
        "max_train_steps": 3,
        "save_every": 10,
        "sample_every": 0,
        "max_sequence_length": 32,
        "learning_rate": 1e-2,
        "gradient_checkpointing": False,
        "condition_pixels": 3136,
    }
    out = {}
    for kind, model, dataset in (
        ("flux", tiny_flux, images),
        ("flux2-klein", tiny_flux2_klein, images),
        ("qwen-edit", tiny_qwen_edit, root / "triplets.jsonl"),
        ("qwen-edit-2511", tiny_qwen_edit_2511, root / "triplets.jsonl"),
    ):
        config = parse_config(
            {
                "trainer": kind,
                "model": str(model),
                "dataset_path": str(dataset),
                "output_path": str(root / kind),
                **common,
            }
        )
        out[kind] = (Path(model), Path(train(config, Reporter(stream=io.StringIO()))["lora_path"]))
    return out


@pytest.fixture(scope="session")
def z_image_lora(tiny_z_image, tmp_path_factory) -> Path:
    """A Z-Image LoRA trained for three steps with alpha != rank (alpha folded into lora_B)."""
    from flenwheel.trainers.config import parse_config
    from flenwheel.trainers.protocol import Reporter
    from flenwheel.trainers.run import train

    root = tmp_path_factory.mktemp("z_image_keys")
    (root / "images").mkdir()
    for index in range(2):
        Image.new("RGB", (64, 64), (60 * index, 120, 200)).save(root / "images" / f"{index}.png")
        (root / "images" / f"{index}.txt").write_text("photo of [trigger]")
    config = parse_config({
        "trainer": "z-image", "model": str(tiny_z_image), "dataset_path": str(root / "images"),
        "output_path": str(root / "out"), "lora_rank": 4, "lora_alpha": 8, "resolution": 64, "bucket_step": 16,
        "mixed_precision": "no", "max_train_steps": 3, "save_every": 10, "sample_every": 0,
        "max_sequence_length": 32, "learning_rate": 1e-2, "gradient_checkpointing": False,
    })
    return Path(train(config, Reporter(stream=io.StringIO()))["lora_path"])
