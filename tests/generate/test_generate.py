"""Step 1.5 engine on the tiny FLUX: records, reproducibility, LoRA strength and switching, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest

from flenwheel.core.data.errors import DatasetError
from flenwheel.core.data.images import load_image, read_png_record
from flenwheel.core.data.records import ImageRecord
from flenwheel.core.generate.generate import generate_one, run_generation
from flenwheel.core.generate.prompt_sets import plan_run
from flenwheel.core.generate.synthetic_report import check_synthetic
from flenwheel.core.models.character_lora import character_lora_file
from flenwheel.core.models.loras import LoraError, LoraSpec

IDS = ["front", "smiling-front", "t-pose"]


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def with_char(flux, project, version="v1", strength=1.0):
    return flux.with_loras([LoraSpec(str(character_lora_file(project, version)), strength)])


def plan(project, run, ids=IDS, variants=2, seed=0):
    return plan_run(project, ids=ids, variants=variants, base_seed=seed, run_settings=run)[1]


def test_three_prompts_two_variants_write_six_complete_records(flux, lora_project, tiny_run):
    handle = with_char(flux, lora_project, "v1", 0.8)
    report = run_generation(lora_project, handle, plan(lora_project, tiny_run))
    dataset = lora_project.dataset("synthetic")
    assert dataset.label == "synthetic/v1" and report.dataset.label == "synthetic/v1"
    records = dataset.records
    assert len(records) == 6 and len(report.generated) == 6 and report.skipped == 0
    lora_sha = report.generated[0].loras[0].sha256
    for record in records:
        assert dataset.image_path(record).is_file()
        assert record.prompt.startswith(("front view", "full body")) and "ohwx_char person" in record.prompt
        assert isinstance(record.seed, int) and record.model == flux.source
        assert [(lora.sha256, lora.strength) for lora in record.loras] == [(lora_sha, 0.8)]
        extra = record.model_dump()
        assert extra["lora_version"] == "char_v1" and extra["family"] in ("angles", "expressions", "poses")
        assert (extra["steps"], extra["guidance"], record.width, record.height) == (2, 3.5, 32, 32)
        assert extra["seconds"] > 0 and extra["prompt_id"] in IDS and extra["variant"] in (0, 1)
        assert "negative_prompt" not in extra
        assert read_png_record(dataset.image_path(record))["seed"] == record.seed
    tags = {(r.model_dump()["prompt_id"], r.angle, r.expression, r.model_dump().get("pose")) for r in records}
    assert tags == {
        ("front", "front", "neutral", None),
        ("smiling-front", "front", "smiling", None),
        ("t-pose", "front", None, "t-pose"),
    }
    assert len({r.seed for r in records}) == 6
    assert dataset.verify().ok
    assert dataset.load().info["lora_version"] == "char_v1"


def test_seeds_reproduce_bit_for_bit(flux, lora_project):
    handle = with_char(flux, lora_project)
    first = generate_one(handle, "photo of ohwx_char person", seed=7, width=32, height=32, steps=2)
    again = generate_one(handle, "photo of ohwx_char person", seed=7, width=32, height=32, steps=2)
    other = generate_one(handle, "photo of ohwx_char person", seed=8, width=32, height=32, steps=2)
    assert first.image.tobytes() == again.image.tobytes()
    assert first.image.tobytes() != other.image.tobytes()
    assert first.fields["seed"] == 7 and first.fields["loras"][0]["strength"] == 1.0


def test_lora_strength_zero_equals_base_and_one_differs(flux, lora_project):
    def render(handle):
        return pixels(
            generate_one(handle, "photo of ohwx_char person", seed=3, width=32, height=32, steps=2).image
        )

    base = render(flux.with_loras([]))
    assert np.array_equal(render(with_char(flux, lora_project, strength=0.0)), base)
    assert np.abs(render(with_char(flux, lora_project, strength=1.0)) - base).max() > 0
    assert np.array_equal(render(flux.with_loras([])), base)


def test_switching_lora_versions_never_reloads_the_base(flux, lora_project, monkeypatch):
    import diffusers

    calls = []
    for cls in (diffusers.FluxPipeline, diffusers.FluxTransformer2DModel, diffusers.AutoencoderKL):
        original = cls.from_pretrained.__func__
        monkeypatch.setattr(
            cls,
            "from_pretrained",
            classmethod(lambda c, *a, _o=original, **k: calls.append(c.__name__) or _o(c, *a, **k)),
        )
    transformer = flux.pipe.transformer
    base_weight = transformer.x_embedder.weight.detach().clone()
    images = {}
    for version in ("v1", "v2", "v1"):
        handle = with_char(flux, lora_project, version)
        images.setdefault(version, []).append(
            pixels(
                generate_one(handle, "photo of ohwx_char person", seed=5, width=32, height=32, steps=2).image
            )
        )
    assert calls == []
    assert flux.pipe.transformer is transformer and np.array_equal(images["v1"][0], images["v1"][1])
    assert np.abs(images["v1"][0] - images["v2"][0]).max() > 0
    assert transformer.x_embedder.weight.equal(base_weight)


def test_interrupted_run_keeps_finished_images_and_resumes(flux, lora_project, tiny_run):
    handle = with_char(flux, lora_project)
    items = plan(lora_project, tiny_run, ids=["front", "sad-front"], variants=2)

    class Cancelled(Exception):
        pass

    def cancel_after_two(done, total, image, record):
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        run_generation(lora_project, handle, items, on_image=cancel_after_two)
    dataset = lora_project.dataset("synthetic")
    assert len(dataset.records) == 2 and dataset.verify().ok
    kept = {r.filename: dataset.image_path(r).read_bytes() for r in dataset.records}

    seen = []
    report = run_generation(lora_project, handle, items, on_image=lambda d, t, i, r: seen.append((d, t)))
    assert report.resumed and report.skipped == 2 and len(report.generated) == 2 and seen == [(1, 2), (2, 2)]
    assert report.dataset.label == "synthetic/v1" and len(dataset.records) == 4
    assert all(
        dataset.image_path(r).read_bytes() == kept[r.filename] for r in dataset.records if r.filename in kept
    )
    assert [r.seed for r in report.records] == [item.seed for item in items]

    again = run_generation(lora_project, handle, items)
    assert again.generated == [] and again.skipped == 4 and len(dataset.records) == 4


def test_other_lora_or_strength_starts_a_new_version(flux, lora_project, tiny_run):
    items = plan(lora_project, tiny_run, ids=["front"], variants=1)
    run_generation(lora_project, with_char(flux, lora_project, "v1"), items)
    second = run_generation(lora_project, with_char(flux, lora_project, "v2"), items)
    third = run_generation(lora_project, with_char(flux, lora_project, "v2", 0.5), items)
    assert [second.dataset.label, third.dataset.label] == ["synthetic/v2", "synthetic/v3"]
    assert third.records[0].loras[0].strength == 0.5
    with pytest.raises(DatasetError, match="another model or other LoRAs"):
        run_generation(lora_project, with_char(flux, lora_project, "v1"), items, version="v3")
    fresh = run_generation(lora_project, with_char(flux, lora_project, "v2", 0.5), items, new_version=True)
    assert fresh.dataset.label == "synthetic/v4" and len(fresh.generated) == 1


def test_finish_seals_a_complete_version_and_a_rerun_has_nothing_to_do(flux, lora_project, tiny_run):
    handle = with_char(flux, lora_project)
    items = plan(lora_project, tiny_run, ids=["front"], variants=1)
    run_generation(lora_project, handle, items, finish=True)
    assert lora_project.dataset("synthetic").finished
    again = run_generation(lora_project, handle, items)
    assert again.dataset.label == "synthetic/v1" and again.skipped == 1 and again.generated == []
    more = run_generation(lora_project, handle, plan(lora_project, tiny_run, ids=["front"], variants=2))
    assert more.dataset.label == "synthetic/v2" and len(more.generated) == 2


def test_batches_keep_seeds_and_records(flux, lora_project, tiny_run):
    handle = with_char(flux, lora_project)
    items = plan(lora_project, tiny_run, ids=["front"], variants=3)
    single = [pixels(generate_one(handle, i.prompt, i.seed, 32, 32, 2).image) for i in items]
    report = run_generation(lora_project, handle, items, batch_size=2)
    assert [r.seed for r in report.records] == [i.seed for i in items]
    batched = [pixels(load_image(report.dataset.image_path(r))) for r in report.records]
    assert all(np.abs(a - b).max() <= 2 for a, b in zip(single, batched, strict=True))


def test_negative_prompt_is_recorded_when_true_cfg_uses_it(flux, lora_project):
    handle = with_char(flux, lora_project)
    used = generate_one(handle, "photo of ohwx_char person", 1, 32, 32, 2, negative_prompt="blurry")
    assert used.fields["negative_prompt"] == "blurry" and used.fields["true_cfg"] == 1.5
    plain = generate_one(handle, "photo of ohwx_char person", 1, 32, 32, 2)
    assert "negative_prompt" not in plain.fields
    assert used.image.tobytes() != plain.image.tobytes()


def test_generate_one_fields_fit_a_dataset_record(flux, lora_project):
    result = generate_one(with_char(flux, lora_project), "photo of ohwx_char person", 11, 32, 32, 2)
    dataset = lora_project.create_dataset("synthetic")
    record = dataset.add_image(result.image, stem="card", **result.fields, cell="front/neutral")
    assert record.seed == 11 and record.loras[0].sha256 and record.model_dump()["cell"] == "front/neutral"


@pytest.mark.parametrize("damage", ["truncated", "wrong keys"])
def test_bad_lora_fails_naming_the_file_and_writes_nothing(flux, lora_project, tiny_run, damage):
    import torch
    from safetensors.torch import save_file

    bad = lora_project.root / f"bad_{damage.replace(' ', '_')}.safetensors"
    if damage == "truncated":
        data = character_lora_file(lora_project, "v1").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        save_file(
            {
                "transformer.no_such_block.lora_A.weight": torch.zeros(4, 32),
                "transformer.no_such_block.lora_B.weight": torch.zeros(32, 4),
            },
            str(bad),
        )
    handle = flux.with_loras([LoraSpec(str(bad))])
    with pytest.raises(LoraError, match=bad.name):
        run_generation(lora_project, handle, plan(lora_project, tiny_run, ids=["front"], variants=1))
    assert lora_project.versions("synthetic") == []


def test_size_must_fit_the_model(flux, lora_project):
    with pytest.raises(Exception, match="multiples of 4"):
        generate_one(flux.with_loras([]), "photo of ohwx_char person", 1, width=30, height=32, steps=1)


def _record(i, **tags):
    return ImageRecord(id=f"{i:064x}", filename=f"{i}.png", stage="synthetic", prompt="p", seed=i, **tags)


def test_summary_checks_the_seed_criteria():
    from flenwheel.core.data.taxonomy import CARD_ANGLES, CARD_EXPRESSIONS, CARD_POSES

    covered = [
        _record(i, angle=a, expression=e)
        for i, (a, e) in enumerate((a, e) for a in CARD_ANGLES for e in CARD_EXPRESSIONS)
    ]
    covered += [_record(100 + i, pose=p) for i, p in enumerate(CARD_POSES)]
    covered += [_record(200 + i) for i in range(50 - len(covered))]
    assert [c.passed for c in check_synthetic(covered)] == [True, True, True]
    few = check_synthetic(covered[:10])
    assert not few[0].passed and "10 images" in few[0].detail
    assert not few[1].passed and "pose t-pose" in few[1].detail and "angle half-right" in few[1].detail
    untracked = covered[:-1] + [ImageRecord(id="f" * 64, filename="x.png", stage="synthetic")]
    assert not check_synthetic(untracked)[2].passed


def test_out_of_memory_halves_the_batch_and_keeps_going(lora_project, tiny_run, monkeypatch):
    import torch
    from PIL import Image

    from flenwheel.core.generate import generate
    from flenwheel.core.generate.generate import Generated

    calls = []

    def fake_batch(handle, prompts, seeds, settings, step_callback=None):
        calls.append(len(prompts))
        if len(prompts) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        colour = (seeds[0] % 256, 0, 0)
        return [
            Generated(
                Image.new("RGB", (32, 32), colour), {"prompt": prompts[0], "seed": seeds[0], "loras": []}
            )
        ]

    monkeypatch.setattr(generate, "generate_batch", fake_batch)
    monkeypatch.setattr(generate, "active_loras", lambda handle: [])
    items = plan(lora_project, tiny_run, ids=["front"], variants=4)
    report = run_generation(lora_project, _FakeHandle(), items, batch_size=4)
    assert calls == [4, 2, 1, 1, 1, 1] and len(report.generated) == 4


class _FakePipe:
    """Takes the arguments a true-CFG pipeline takes (what records and resume keys are built from)."""

    def __call__(self, prompt=None, negative_prompt=None, true_cfg_scale=1.0):
        raise AssertionError("generate_batch is replaced in these tests")


class _FakeHandle:
    source, options, lora_specs, pipe = "fake-model", {}, (), _FakePipe()
