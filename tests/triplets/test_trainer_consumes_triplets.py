"""The Qwen-Edit LoRA trainer consumes TripletWriter's JSONL, and its LoRA is our editor (``ours:v1``).

The trainer lives in ``flenwheel.trainers`` (``python -m flenwheel.trainers qwen-edit --config cfg.yaml``);
it is imported at module level, so a broken trainer package fails this test instead of skipping it.
"""

from __future__ import annotations

import io

import yaml

from flenwheel.core.editor.editor_compare import Editor, editor_handle
from flenwheel.core.editor.triplets import build_triplets
from flenwheel.core.models.editor_lora import resolve_lora
from flenwheel.core.models.registry import family_names
from flenwheel.trainers.protocol import Reporter, parse_line
from flenwheel.trainers.run import run_job

STEPS = 5


def test_trainer_consumes_the_jsonl_for_5_steps(corrections, drop_fix, picture, tiny_qwen_edit):
    assert "qwen-edit" in family_names(), "flenwheel.trainers must provide the qwen-edit trainer"
    case = corrections(3)
    with case.enriched.edit() as edit:                          # one edit was made with a second view
        edit.records[0].parents = [edit.records[0].parents[0], case.sources[1].id]
    for i in range(3):
        drop_fix(case, f"edit_{i:02d}.png", picture(400 + i))
    built = build_triplets(case.project, identity="off")
    assert "control_path_1" in built.lines[0]

    output = case.project.qwen_lora_dir("v1")
    config = output / "config.yaml"
    output.mkdir(parents=True)
    config.write_text(yaml.safe_dump({
        "trainer": "qwen-edit", "model": str(tiny_qwen_edit), "dataset_path": [str(built.jsonl)],
        "output_path": str(output), "output_name": "qwen_char_lora_v1", "max_train_steps": STEPS,
        "save_every": STEPS, "lora_rank": 4, "resolution": 64, "bucket_step": 16, "mixed_precision": "no",
        "gradient_checkpointing": False, "max_sequence_length": 32, "learning_rate": 1e-3, "sample_every": 0,
        "caption_dropout": 0.0, "save_dtype": "fp32", "condition_pixels": 56 * 56,
    }))
    stream = io.StringIO()
    assert run_job("qwen-edit", config, Reporter(stream=stream)) == 0, stream.getvalue()[-2000:]
    events = [event for event in map(parse_line, stream.getvalue().splitlines()) if event]
    start = next(e for e in events if e["event"] == "start")
    assert start["items"] == 3
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps[-1] == STEPS
    done = next(e for e in events if e["event"] == "done")
    lora = output / "qwen_char_lora_v1.safetensors"
    assert done["status"] == "finished" and lora.is_file()

    spec = resolve_lora("ours:v1", case.project)
    assert spec.path == str(lora)
    from flenwheel.core.enrich.plan import EnrichSettings
    from flenwheel.core.enrich.qwen_edit import edit_once
    from flenwheel.core.models.pipelines import LoadOptions
    from flenwheel.core.models.qwen_edit_loader import load_qwen_edit

    base = load_qwen_edit(str(tiny_qwen_edit), options=LoadOptions(dtype="fp32", device="cpu"))
    settings = EnrichSettings(steps=2, true_cfg=1.0, width=64, height=64, vae_pixels=4096, condition_pixels=3136)
    plain = edit_once(editor_handle(base, Editor("base")), picture(1), "make it blue", 0, settings)
    ours = edit_once(editor_handle(base, Editor("ours:v1", (spec,))), picture(1), "make it blue", 0, settings)
    assert ours.fields["loras"][0]["path"] == str(lora)
    assert plain.image.tobytes() != ours.image.tobytes(), "the trained editor LoRA changes the edit"
