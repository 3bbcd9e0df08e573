"""``flenwheel train init``, ``flenwheel train flux|qwen-edit --config`` and ``flenwheel iterate``."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

TINY_SET = [
    "--set",
    "mixed_precision=no",
    "--set",
    "bucket_step=16",
    "--set",
    "max_sequence_length=32",
    "--set",
    "gradient_checkpointing=false",
    "--set",
    "sample_steps=2",
    "--set",
    "sample_every=0",
    "--set",
    "save_every=2",
]


@pytest.fixture
def reviewed_project(project, noise_image):
    """Two sources and three enriched images, one of them reviewed as good."""
    sources = project.create_dataset("source")
    with sources.edit() as edit:
        for index in range(2):
            edit.add_image(
                noise_image((64, 64), index), stem=f"s{index}", caption=f"photo of {project.subject}"
            )
    enriched = project.create_dataset("enriched")
    with enriched.edit() as edit:
        edit.add_image(
            noise_image((64, 64), 10),
            stem="good",
            label="good",
            prompt="turn the head left",
            filename="good/e0.png",
            parents=[sources.records[0].id],
        )
        edit.add_image(noise_image((64, 64), 11), stem="bad", label="rejected", filename="rejected/e1.png")
        edit.add_image(
            noise_image((64, 64), 12), stem="fix", label="needs_correction", filename="corrections/e2.png"
        )
    return project


def _cli(*args):
    from flenwheel.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_train_init_writes_training_set_and_config(reviewed_project, tiny_flux):
    result = _cli("train", "init", "flux", reviewed_project.root, "--model", tiny_flux, "--steps", 4)
    assert result.exit_code == 0, result.output
    folder = reviewed_project.flux_lora_dir("v1")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["trainer"] == "flux" and config["max_train_steps"] == 4 and config["lora_rank"] == 16
    assert config["dataset_path"] == ["training_set.json"] and config["output_path"] == "."
    assert config["output_name"] == "char_lora_v1" and config["instance_token"] == "ohwx_char person"
    entries = json.loads((folder / "training_set.json").read_text())["items"]
    assert sorted(e["origin"] for e in entries) == ["enriched/v1", "source/v1", "source/v1"]
    good = next(e for e in entries if e["origin"] == "enriched/v1")
    assert good["parents"] and good["caption"] == "turn the head left" and len(good["sha256"]) == 64
    assert (folder / good["path"]).resolve().is_file()
    again = _cli("train", "init", "flux", reviewed_project.root, "--model", tiny_flux)
    assert again.exit_code == 0 and (reviewed_project.flux_lora_dir("v2") / "config.yaml").is_file()


def test_train_flux_from_init_config_then_iterate(reviewed_project, tiny_flux, noise_image):
    from flenwheel.core.data.project import Project
    from flenwheel.trainers.lora_io import read_metadata

    init = _cli(
        "train",
        "init",
        "flux",
        reviewed_project.root,
        "--model",
        tiny_flux,
        "--steps",
        4,
        "--resolution",
        64,
        "--rank",
        4,
        *TINY_SET,
    )
    assert init.exit_code == 0, init.output
    config = reviewed_project.flux_lora_dir("v1") / "config.yaml"
    result = _cli("train", "flux", "--config", config)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] != "phase"][0] == "start" and events[-1]["event"] == "done"
    final = reviewed_project.flux_lora_dir("v1") / "char_lora_v1.safetensors"
    assert final.is_file() and read_metadata(final)["flenwheel.dataset_version"] == "v1"
    assert Project.open(reviewed_project.root).config.current["flux_lora"] == "char_v1"

    refused = _cli("iterate", reviewed_project.root)
    assert refused.exit_code == 1 and "pristine/v1" in refused.output
    pristine = reviewed_project.create_dataset("pristine", "v1")
    pristine.add_image(
        noise_image((64, 64), 30),
        stem="p0",
        prompt=f"{reviewed_project.subject} at the beach",
        label="pristine",
    )
    result = _cli("iterate", reviewed_project.root, "--model", tiny_flux, *TINY_SET)
    assert result.exit_code == 0, result.output
    v2 = reviewed_project.flux_lora_dir("v2")
    origins = sorted(e["origin"] for e in json.loads((v2 / "training_set.json").read_text())["items"])
    assert origins == ["enriched/v1", "pristine/v1", "source/v1", "source/v1"]
    assert yaml.safe_load((v2 / "config.yaml").read_text())["output_name"] == "char_lora_v2"


def test_init_refuses_a_version_with_results(reviewed_project, tiny_flux):
    _cli("train", "init", "flux", reviewed_project.root, "--model", tiny_flux)
    (reviewed_project.flux_lora_dir("v1") / "checkpoints").mkdir()
    result = _cli("train", "init", "flux", reviewed_project.root, "--version", "v1")
    assert result.exit_code == 1 and "already holds training results" in result.output


def test_train_init_qwen_edit_points_at_the_triplets(project, triplets_file, tiny_qwen_edit):
    from flenwheel.trainers.config import load_config

    target = project.stage_dir("qwen_training") / "v1"
    shutil.copytree(triplets_file.parent, target)
    result = _cli("train", "init", "qwen-edit", project.root, "--model", tiny_qwen_edit)
    assert result.exit_code == 0, result.output
    config = load_config(project.qwen_lora_dir("v1") / "config.yaml", "qwen-edit")
    assert config.dataset_path == [str(target / "triplets.jsonl")]
    assert config.output_name == "qwen_char_lora_v1" and config.output_dir == project.qwen_lora_dir("v1")


def test_train_init_with_an_alias_writes_the_canonical_trainer(project, triplets_file):
    from flenwheel.core.models.registry import family

    shutil.copytree(triplets_file.parent, project.stage_dir("qwen_training") / "v1")
    result = _cli("train", "init", "qwen-edit-2509", project.root)
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((project.qwen_lora_dir("v1") / "config.yaml").read_text())
    assert written["trainer"] == "qwen-edit" and written["output_name"] == "qwen_char_lora_v1"
    assert written["max_train_steps"] == family("qwen-edit").training_defaults["max_train_steps"]
    assert "next: flenwheel train qwen-edit --config" in result.output


def test_init_without_data_is_a_clear_error(project):
    result = _cli("train", "init", "qwen-edit", project.root)
    assert result.exit_code == 1 and "no triplets yet" in result.output
    result = _cli("train", "init", "flux", project.root)
    assert result.exit_code == 1 and "no training images yet" in result.output
    result = _cli("train", "init", "flux", project.root, "--set", "oops")
    assert result.exit_code == 2


def test_a_wired_dataset_becomes_the_new_versions_training_set(reviewed_project, tiny_flux):
    from flenwheel.core.data.handles import DatasetHandle
    from flenwheel.core.training.planning import prepare_run

    sources = DatasetHandle(reviewed_project.dataset("source"))
    one = sources.subset([sources.records()[1].id])
    plan = prepare_run(reviewed_project, "flux", "latest", {"model": str(tiny_flux)}, one)
    entries = json.loads((plan.output_dir / "training_set.json").read_text())["items"]
    assert plan.version == "v1" and [e["id"] for e in entries] == [sources.records()[1].id]
    again = prepare_run(reviewed_project, "flux", "latest", {"max_train_steps": 7}, sources)
    assert again.version == "v1" and yaml.safe_load(again.config_path.read_text())["max_train_steps"] == 7
    assert len(json.loads((plan.output_dir / "training_set.json").read_text())["items"]) == 1  # still frozen
    with pytest.raises(Exception, match="triplets dataset"):
        prepare_run(reviewed_project, "qwen-edit", "new", None, sources)


@pytest.fixture
def toy_family(monkeypatch):
    """A family registered for one test: FLUX.1's code under another name, LoRA folder and naming."""
    import dataclasses

    from flenwheel.core.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry.register(dataclasses.replace(
        registry.FLUX1_DEV, name="toy-flux", aliases=(), title="Toy FLUX",
        lora=registry.LoraLayout("models/toy_lora", "toy_{version}", "toy_lora_{version}", "toy_lora"),
    ))


def test_a_registered_family_plans_and_trains_with_no_other_code(reviewed_project, tiny_flux, toy_family,
                                                                 train_quietly):
    from flenwheel.core.data.project import Project
    from flenwheel.core.training.planning import init_run, lora_versions
    from flenwheel.trainers.config import load_config

    settings = {"model": str(tiny_flux), "max_train_steps": 2, "resolution": 64, "lora_rank": 4,
                **{key: yaml.safe_load(value) for key, value in (s.split("=") for s in TINY_SET[1::2])}}
    plan = init_run(reviewed_project, "toy-flux", overrides=settings)
    assert plan.config_path == reviewed_project.root / "models/toy_lora/toy_v1/config.yaml"
    config = load_config(plan.config_path, "toy-flux")
    assert config.trainer == "toy-flux" and config.output_name == "toy_lora_v1"
    done, _ = train_quietly(config)
    assert done["status"] == "finished" and (plan.output_dir / "toy_lora_v1.safetensors").is_file()
    assert Project.open(reviewed_project.root).config.current["toy_lora"] == "toy_v1"
    assert lora_versions(reviewed_project, "toy-flux") == [1] and lora_versions(reviewed_project, "flux") == []
    assert init_run(reviewed_project, "toy-flux", overrides=settings).version == "v2"
