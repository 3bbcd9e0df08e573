"""Qwen-Image-Edit-2509 LoRA on triplets: conditioned as the pipeline does it, loadable by the pipeline."""

from __future__ import annotations

import json

import pytest
import torch


def test_trains_on_triplets_and_lora_changes_edits_in_fresh_pipeline(
    qwen_config, train_quietly, tiny_qwen_edit, triplets_file
):
    from PIL import Image

    from flenwheel.core.models.pipelines import load_pipeline, qwen_edit_sizes

    config = qwen_config(output_name="qwen_char_lora_v1", lora_alpha=8.0)
    done, events = train_quietly(config)
    assert done["status"] == "finished"
    assert done["lora_path"].endswith("qwen_char_lora_v1.safetensors")
    start = next(e for e in events if e["event"] == "start")
    assert start["items"] == 4 and start["dataset_version"] == "v1"

    handle = load_pipeline("qwen-edit", str(tiny_qwen_edit), dtype="fp32", device="cpu")
    source = Image.open(triplets_file.parent / "source" / "0.png").convert("RGB")

    def edit():
        with qwen_edit_sizes(vae_pixels=64 * 64, condition_pixels=56 * 56):
            return handle.pipe(
                image=[source],
                prompt="invert the colours",
                height=64,
                width=64,
                num_inference_steps=2,
                true_cfg_scale=1.0,
                output_type="np",
                generator=torch.Generator().manual_seed(0),
            ).images

    base = edit()
    handle.pipe.load_lora_weights(done["lora_path"], adapter_name="editor")
    assert abs(edit() - base).max() > 1e-4


def test_lora_matches_trained_weights_with_alpha_folded(qwen_config, train_quietly, tiny_qwen_edit):
    """Whatever diffusers' Qwen loader does with alpha, our file must give exactly the trained update."""
    from diffusers import QwenImageEditPlusPipeline, QwenImageTransformer2DModel
    from peft import LoraConfig
    from safetensors.torch import load_file

    from flenwheel.trainers.families.qwen_edit import QWEN_EDIT_TARGETS
    from flenwheel.trainers.lora_io import resolve_targets

    config = qwen_config(lora_alpha=2.0)
    done, _ = train_quietly(config)
    trained = QwenImageTransformer2DModel.from_pretrained(tiny_qwen_edit, subfolder="transformer")
    targets = resolve_targets(trained, list(QWEN_EDIT_TARGETS), ("transformer_blocks",), "qwen-edit")
    trained.add_adapter(LoraConfig(r=4, lora_alpha=2.0, target_modules=targets))
    trained.load_state_dict(
        load_file(str(config.output_dir / "checkpoints" / "step_000006" / "trainable.safetensors")),
        strict=False,
    )
    pipe = QwenImageEditPlusPipeline.from_pretrained(
        tiny_qwen_edit,
        transformer=QwenImageTransformer2DModel.from_pretrained(tiny_qwen_edit, subfolder="transformer"),
    )
    pipe.load_lora_weights(done["lora_path"])
    gen = torch.Generator().manual_seed(0)
    inputs = {
        "hidden_states": torch.randn(1, 32, 16, generator=gen),
        "encoder_hidden_states": torch.randn(1, 7, 16, generator=gen),
        "timestep": torch.tensor([0.4]),
        "img_shapes": [[(1, 4, 4), (1, 4, 4)]],
        "return_dict": False,
    }
    with torch.no_grad():
        assert torch.allclose(pipe.transformer(**inputs)[0], trained(**inputs)[0], atol=1e-5)


class _Recorder(torch.nn.Module):
    """Stands in for the transformer: records its inputs and answers huge values on source tokens."""

    def __init__(self, target_tokens: int) -> None:
        super().__init__()
        self.target_tokens = target_tokens
        self.calls = []

    def forward(self, hidden_states, **kwargs):
        self.calls.append({"hidden": hidden_states.shape, **kwargs})
        out = torch.zeros_like(hidden_states)
        out[:, self.target_tokens :] = 1e6
        return (out,)


@pytest.mark.parametrize("sources", [1, 2])
def test_sources_packed_after_noisy_target_and_loss_on_target_only(qwen_config, tmp_path, sources):
    from PIL import Image

    from flenwheel.trainers.adapter import Example
    from flenwheel.trainers.datasets import TrainItem
    from flenwheel.trainers.families.qwen_edit import QwenEditAdapter

    adapter = QwenEditAdapter(qwen_config(), torch.device("cpu"), torch.float32)
    adapter.load_encoders()
    adapter.load_transformer()
    paths = []
    for index in range(1 + sources):
        path = tmp_path / f"{index}.png"
        Image.new("RGB", (64, 64), (40 * index, 90, 200)).save(path)
        paths.append(path)
    item = TrainItem(paths[0], "make it red", "x", tuple(paths[1:]), size=(64, 64))
    example = Example(
        adapter.encode_images(item, (64, 64)), adapter.encode_text(item, item.caption), (64, 64)
    )
    target_tokens = (64 // 8) ** 2
    model = _Recorder(target_tokens)
    loss = adapter.loss(model, [example, example], torch.Generator().manual_seed(0))
    call = model.calls[0]
    assert call["hidden"] == (2, target_tokens * (1 + sources), 16)
    assert call["img_shapes"] == [[(1, 8, 8)] * (1 + sources)] * 2
    assert call["encoder_hidden_states"].shape[0] == 2
    assert loss.item() < 1e3  # the huge source-token outputs are not part of the loss


def test_triplets_reader_accepts_absolute_and_numbered_controls(tmp_path, triplets_file):
    from flenwheel.trainers.triplets import read_triplets

    folder = triplets_file.parent
    extra = {
        "image_path": str(folder / "target" / "1.png"),
        "control_path_0": "source/1.png",
        "control_path_1": str(folder / "source" / "2.png"),
        "caption": "swap",
        "issue": "i",
    }
    triplets_file.write_text(triplets_file.read_text() + json.dumps(extra) + "\n")
    found = read_triplets(triplets_file)
    assert len(found) == 5
    assert found[-1].controls == (folder / "source" / "1.png", folder / "source" / "2.png")
    assert found[0].extra["issue"] == "wrong colours"


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"control_path": "source/0.png", "caption": "x"}', "no image_path"),
        ('{"image_path": "target/0.png", "caption": "x"}', "no control_path"),
        ('{"image_path": "target/0.png", "control_path": "source/0.png"}', "no caption"),
        ('{"image_path": "target/9.png", "control_path": "source/0.png", "caption": "x"}', "missing"),
        ("not json", "line 1 is not JSON"),
    ],
)
def test_triplets_errors_name_the_line(tmp_path, line, message):
    from flenwheel.core.data.errors import DatasetError
    from flenwheel.trainers.triplets import read_triplets

    (tmp_path / "source").mkdir()
    (tmp_path / "target").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "source" / "0.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "target" / "0.png")
    (tmp_path / "triplets.jsonl").write_text(line + "\n")
    with pytest.raises(DatasetError, match=message):
        read_triplets(tmp_path)


def test_flux_trainer_refuses_triplets(flux_config, train_quietly, triplets_file):
    from flenwheel.core.data.errors import DatasetError

    with pytest.raises(DatasetError, match="qwen-edit"):
        train_quietly(flux_config(dataset_path=str(triplets_file)))


def test_dataset_hash_follows_source_images(triplets_file):
    from PIL import Image

    from flenwheel.trainers.datasets import read_training_data

    before = read_training_data([str(triplets_file)], "qwen-edit")
    assert before.version == "v1" and before.items[0].controls
    Image.new("RGB", (64, 64), (1, 2, 3)).save(triplets_file.parent / "source" / "0.png")
    assert read_training_data([str(triplets_file)], "qwen-edit").hash != before.hash
