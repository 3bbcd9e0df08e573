"""Native ComfyUI graphs feed the flywheel: the item and save nodes driven with tensors and strings.

The "rendered" images are noise (each item gets its own), so nothing here needs a model; the
identity gate is a scripted scorer, because what this stage owns is the retry/keep logic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from flenwheel.core.curate.curation import add_sources
from flenwheel.core.data.errors import FlenwheelError
from flenwheel.core.data.images import images_to_tensor
from flenwheel.core.data.project import Project
from flenwheel.core.generate.prompt_sets import plan_run
from flenwheel.core.graph.items import plan_items
from flenwheel.core.graph.lineage import read_lineage
from flenwheel.core.graph.save import save_items
from flenwheel.nodes.native_node import FlenwheelFlywheelItems, FlenwheelSaveFlywheelImages

SAVE = "FLENwheel Save Flywheel Images"
#: An API-format graph as ComfyUI hands it to the save node (node 9) through the hidden PROMPT input.
PROMPT = {
    "1": {"class_type": "UNETLoader",
          "inputs": {"unet_name": "flux1-dev-fp8.safetensors", "weight_dtype": "fp8_e4m3fn"}},
    "2": {"class_type": "LoraLoaderModelOnly",
          "inputs": {"model": ["1", 0], "lora_name": "char_v1/char_lora_v1.safetensors", "strength_model": 0.8}},
    "3": {"class_type": "DualCLIPLoader",
          "inputs": {"clip_name1": "clip_l.safetensors", "clip_name2": "t5xxl_fp16.safetensors", "type": "flux"}},
    "5": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "seed": ["7", 2], "steps": 20, "cfg": 1.0,
                                               "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0,
                                               "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["8", 0]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["3", 0], "text": ["7", 1]}},
    "7": {"class_type": "FlenwheelFlywheelItems", "inputs": {"step": "generate"}},
    "8": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "9": {"class_type": "FlenwheelSaveFlywheelImages", "inputs": {"images": ["10", 0], "item_id": ["7", 3]}},
    "10": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["11", 0]}},
    "11": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
    "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "unrelated.safetensors"}},
}
WORKFLOW = {"nodes": [{"id": 9, "type": "FlenwheelSaveFlywheelImages"}], "links": []}


@pytest.fixture
def character(tmp_path, faces):
    project = Project.init(tmp_path / "character", name="Barack Obama")
    assert len(add_sources(project, [faces / "obama" / "obama3.jpg", faces / "obama" / "obama4.jpg"]).added) == 2
    return project


def rendered(item_ids, size=64):
    """One distinct noise picture per item, as a sampler + VAEDecode would hand them over."""
    images = []
    for text in item_ids:
        rng = np.random.default_rng(abs(hash(text)) % 2**32)
        images.append(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB"))
    return images


def files_of(dataset):
    return sorted(p.name for p in dataset.path.rglob("*.png"))


def test_enrich_items_are_sources_x_templates_and_saves_carry_lineage(character):
    plan = plan_items(character, "enrich", per_source=2, seed=5)
    sources = character.dataset("source").records
    assert plan.dataset.label == "enriched/v1" and plan.planned == 4 and len(plan.items) == 4
    assert {item.id.split("#")[1].split(":")[0] for item in plan.items} == {r.id for r in sources}
    assert all(item.source.is_file() and item.prompt for item in plan.items)
    assert len({item.seed for item in plan.items}) == 4
    lineage = read_lineage(PROMPT, "9")
    result = save_items(character, rendered([i.id for i in plan.items[:2]]), [i.id for i in plan.items[:2]],
                        lineage=lineage, png_text={"prompt": PROMPT, "workflow": WORKFLOW})
    assert len(result.saved) == 2
    record = plan.dataset.records[0]
    source = next(r for r in sources if r.id == plan.items[0].id.split("#")[1].split(":")[0])
    assert record.parents == [source.id] and record.prompt == plan.items[0].prompt
    assert record.seed == plan.items[0].seed and record.model == "flux1-dev-fp8.safetensors"
    assert [(lora.path, lora.strength) for lora in record.loras] == [("char_v1/char_lora_v1.safetensors", 0.8)]
    extra = record.model_extra
    assert extra["edit_key"] == extra["item_key"] and extra["lora_version"] == "char_v1"
    assert extra["sampler"] == {"sampler_name": "euler", "scheduler": "simple", "steps": 20, "cfg": 1.0,
                                "denoise": 1.0}
    assert extra["text_encoders"] == ["clip_l.safetensors", "t5xxl_fp16.safetensors"]
    assert extra["vae"] == "ae.safetensors"
    assert "ohwx_char person, " in record.caption and extra["source_file"] == source.filename
    with Image.open(plan.dataset.image_path(record)) as png:
        assert json.loads(png.text["prompt"]) == PROMPT and json.loads(png.text["workflow"]) == WORKFLOW
        assert json.loads(png.text["flenwheel"])["item_key"] == extra["item_key"]
    assert plan.dataset.verify().ok


def test_requeue_plans_only_missing_items_and_never_writes_one_twice(character):
    first = plan_items(character, "enrich", per_source=2)
    ids = [item.id for item in first.items]
    save_items(character, rendered(ids[:2]), ids[:2])
    again = plan_items(character, "enrich", per_source=2)
    assert again.dataset.label == first.dataset.label and again.done == 2
    assert [item.id for item in again.items] == ids[2:]
    result = save_items(character, rendered(ids), ids)
    assert result.already == ids[:2] and len(result.saved) == 2
    assert len(first.dataset.records) == 4 and len(files_of(first.dataset)) == 4
    assert plan_items(character, "enrich", per_source=2).items == []
    first.dataset.finish()
    finished = plan_items(character, "enrich", per_source=2)
    assert finished.dataset.label == "enriched/v1" and finished.items == []
    assert plan_items(character, "enrich", per_source=3).dataset.label == "enriched/v2"


def test_bad_input_names_the_node_and_writes_nothing(character):
    plan = plan_items(character, "enrich", per_source=2)
    ids = [item.id for item in plan.items]
    before = plan.dataset.metadata_path.read_bytes()
    cases = [
        (rendered(ids[:1]), [ids[0].split("#")[0] + "#nope:0"], "not planned in enriched/v1: nope:0"),
        (rendered(ids[:2]), ids[:1], "2 image(s) for 1 item id(s)"),
        (rendered(ids[:2]), [ids[0], ids[0]], "given twice"),
        (rendered(ids[:1]), ["some text"], "is not a FLENwheel item id"),
        (rendered(ids[:1]), ["synthetic/v7#a:0"], "synthetic/v7 does not exist"),
    ]
    for images, item_ids, message in cases:
        with pytest.raises(FlenwheelError, match=re.escape(message)) as caught:
            save_items(character, images, item_ids)
        assert str(caught.value).startswith(SAVE) and "nothing was written" in str(caught.value)
    assert plan.dataset.metadata_path.read_bytes() == before and files_of(plan.dataset) == []
    plan.dataset.finish()
    with pytest.raises(FlenwheelError, match="is finished"):
        save_items(character, rendered(ids[:1]), ids[:1])
    assert files_of(plan.dataset) == []


def test_a_graph_with_other_models_cannot_join_a_started_version(character):
    plan = plan_items(character, "generate", families=["angles"], variants=1)
    ids = [item.id for item in plan.items]
    save_items(character, rendered(ids[:1]), ids[:1], lineage=read_lineage(PROMPT, "9"))
    other = {**PROMPT, "2": {**PROMPT["2"], "inputs": {**PROMPT["2"]["inputs"], "strength_model": 1.0}}}
    with pytest.raises(FlenwheelError, match="set new_version"):
        save_items(character, rendered(ids[1:2]), ids[1:2], lineage=read_lineage(other, "9"))
    assert len(plan.dataset.records) == 1


@dataclass
class FakeScore:
    match: bool
    distance: float

    def to_json(self):
        return {"match": self.match, "distance": self.distance}


class ScriptedScorer:
    tolerance = 0.6

    def __init__(self, answers):
        self.answers = list(answers)

    def score(self, image):
        match, distance = self.answers.pop(0) if self.answers else (True, 0.3)
        return FakeScore(match, distance)


def test_identity_scores_are_recorded_and_drifted_items_retry_with_new_seeds(character):
    plan = plan_items(character, "generate", families=["angles"], variants=1)
    first, second = plan.items[0], plan.items[1]
    result = save_items(character, rendered([first.id, second.id]), [first.id, second.id],
                        scorer=ScriptedScorer([(True, 0.31), (False, 0.8)]), max_retries=1)
    assert [r.model_extra["item_key"] for r in result.saved] == [first.id.split("#")[1]]
    assert result.retry == [second.id]
    kept = plan.dataset.records[0]
    assert kept.scores["identity"] == {"match": True, "distance": 0.31} and kept.model_extra["drifted"] is False
    again = plan_items(character, "generate", families=["angles"], variants=1)
    retried = next(item for item in again.items if item.id == second.id)
    assert retried.seed != second.seed and again.retries == [second.id]
    final = save_items(character, rendered([second.id + "x"]), [second.id], scorer=ScriptedScorer([(False, 0.9)]),
                       max_retries=1)
    assert final.drifted == [second.id] and not final.retry
    record = next(r for r in plan.dataset.records if r.model_extra["item_key"] == second.id.split("#")[1])
    assert record.seed == retried.seed and record.model_extra["drifted"] is True
    assert record.model_extra["attempts"] == 2 and record.scores["identity"]["distance"] == 0.9


def test_generation_items_follow_the_prompt_plan(character):
    plan = plan_items(character, "generate", families=["angles", "expressions"], variants=2, seed=3)
    assert plan.dataset.label == "synthetic/v1"
    assert all("ohwx_char" in item.prompt and item.source is None for item in plan.items)
    assert len(plan.items) == len({item.id for item in plan.items}) and plan.items[0].id.endswith(":0")
    prompt_set, planned = plan_run(character, families=["angles", "expressions"], variants=2, base_seed=3)
    assert [(i.prompt, i.seed, i.width, i.height) for i in plan.items] == [
        (p.prompt, p.seed, p.settings.width, p.settings.height) for p in planned]
    ids = [item.id for item in plan.items[:1]]
    record = save_items(character, rendered(ids), ids, lineage=read_lineage(PROMPT, "9")).saved[0]
    extra = record.model_extra
    assert extra["family"] == "angles" and extra["variant"] == 0 and record.stage == "synthetic"
    assert extra["lora_version"] == "char_v1" and record.prompt == plan.items[0].prompt


def test_model_card_items_are_cells_x_tries_and_are_scored(character, tmp_path, faces, no_pose_env):
    card = tmp_path / "card.yaml"
    card.write_text("portraits:\n  angles: [front]\n  expressions: [neutral, smiling]\nposes:\n  items: []\n")
    plan = plan_items(character, "model_card", card_files=[card], tries=2, label="v1")
    assert plan.dataset.label == "benchmark/v1" and plan.planned == 4
    ids = [item.id for item in plan.items]
    photo = Image.open(faces / "obama" / "obama.jpg").convert("RGB")
    images = [photo, photo.rotate(1), photo.rotate(2), photo.rotate(3)]
    v2 = {**PROMPT, "2": {**PROMPT["2"], "inputs": {**PROMPT["2"]["inputs"], "lora_name": "char_lora_v2.safetensors"}}}
    with pytest.raises(FlenwheelError, match="model card of char_v1, but the graph loads the char_v2 LoRA"):
        save_items(character, images, ids, lineage=read_lineage(v2, "9"), checks="resolution,sharpness")
    result = save_items(character, images, ids, lineage=read_lineage(PROMPT, "9"), checks="resolution,sharpness")
    assert len(result.saved) == 4
    record = plan.dataset.records[0]
    assert set(record.scores["benchmark"]["checks"]) >= {"resolution", "sharpness"}
    results = json.loads((character.benchmarks_dir / "char_v1" / "results.json").read_text())
    assert results["lora_version"] == "char_v1" and results["summary"]["complete"]
    assert (character.benchmarks_dir / "char_v1" / "model_card.png").is_file()


@pytest.fixture
def no_pose_env(monkeypatch):
    from flenwheel.core.vision.body_pose import ENV_PYTHON

    monkeypatch.delenv(ENV_PYTHON, raising=False)


def test_nodes_hand_out_lists_and_take_a_batch_back(character):
    items = FlenwheelFlywheelItems().plan(character, "enrich", 0, 2, 0, 0, "", "char_v1")
    images, prompts, seeds, ids, widths, heights, handle, summary = items
    assert len(images) == len(prompts) == len(seeds) == len(ids) == len(widths) == 4
    assert (widths[0], heights[0]) == (images[0].shape[2], images[0].shape[1])
    assert images[0].shape[0] == 1 and "4 to make now" in summary
    batch = images_to_tensor(rendered(ids[:2]))
    node = FlenwheelSaveFlywheelImages()
    with pytest.raises(FlenwheelError, match="2 image"):
        node.save([character], [batch], ids[:1], ["off"], [0.6], [2])
    dataset, text, drifted = node.save([character], [batch], ids[:2], ["off"], [0.6], [2], prompt=[PROMPT],
                                       extra_pnginfo=[{"workflow": WORKFLOW}], unique_id=["9"])
    assert "2 saved" in text and drifted == "" and len(dataset) == 2
    assert dataset.records()[0].model == "flux1-dev-fp8.safetensors"


def test_cli_plans_items_and_saves_rendered_files(character, tmp_path):
    from click.testing import CliRunner

    from flenwheel.cli import cli

    planned = CliRunner().invoke(cli, ["items", "plan", str(character.root), "--step", "generate",
                                       "--families", "angles", "--variants", "1", "--json"])
    assert planned.exit_code == 0, planned.output
    items = json.loads(planned.stdout)["items"]
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(PROMPT))
    pairs = []
    for item, image in zip(items[:2], rendered([i["id"] for i in items[:2]]), strict=True):
        path = tmp_path / f"{item['seed']}.png"
        image.save(path)
        pairs.append(f"{item['id']}={path}")
    bad = CliRunner().invoke(cli, ["items", "save", str(character.root), pairs[0], "not-a-pair"])
    assert bad.exit_code == 1 and "is not ITEM_ID=IMAGE" in bad.output
    saved = CliRunner().invoke(cli, ["items", "save", str(character.root), *pairs, "--graph", str(graph)])
    assert saved.exit_code == 0 and "synthetic/v1: 2 saved" in saved.output
    assert {r.model for r in character.dataset("synthetic").records} == {"flux1-dev-fp8.safetensors"}
    again = CliRunner().invoke(cli, ["items", "plan", str(character.root), "--step", "generate",
                                     "--families", "angles", "--variants", "1", "--json"])
    assert json.loads(again.stdout)["done"] == 2 and len(json.loads(again.stdout)["items"]) == len(items) - 2


def test_native_edits_flow_through_review_into_the_training_set(character, tmp_path):
    from flenwheel.core.review.placement import place
    from flenwheel.core.review.store import ReviewStore
    from flenwheel.core.training.planning import build_image_set

    plan = plan_items(character, "enrich", per_source=1)
    ids = [item.id for item in plan.items]
    saved = save_items(character, rendered(ids), ids, lineage=read_lineage(PROMPT, "9")).saved
    store = ReviewStore(character)
    store.decide(saved[0].id, "enriched", "v1", "good", reviewer="test")
    store.decide(saved[1].id, "enriched", "v1", "reject", reason="identity_drift", reviewer="test")
    place(character, "enriched", "v1")
    assert {r.filename.split("/")[0] for r in plan.dataset.records} == {"good", "rejected"}
    entries, counts = build_image_set(character, "v1", tmp_path)
    assert counts == {"source/v1": 2, "enriched/v1": 1}
    edit = next(e for e in entries if e["origin"] == "enriched/v1")
    assert edit["id"] == saved[0].id and edit["parents"] == saved[0].parents and "ohwx_char" in edit["caption"]
    assert plan.dataset.verify().ok


def test_lineage_comes_from_the_nodes_upstream_of_the_save_node():
    other = {"0": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl.safetensors"}},
             "13": {"class_type": "LoraLoader", "inputs": {"model": ["0", 0], "lora_name": "style.safetensors",
                                                            "strength_model": ["7", 2]}}}
    graph = {**PROMPT, **other}
    upstream = read_lineage(graph, "9")
    assert upstream.model == "flux1-dev-fp8.safetensors" and [r.path for r in upstream.loras] == [
        "char_v1/char_lora_v1.safetensors"]
    everything = read_lineage(graph, None)
    assert everything.model == "sdxl.safetensors"
    assert [(r.path, r.strength) for r in everything.loras] == [("char_v1/char_lora_v1.safetensors", 0.8),
                                                                 ("style.safetensors", 1.0)]
    assert everything.loras[1].model_extra == {"strength_unknown": True}
    assert read_lineage(None).fields()["model"] is None
