"""FLENwheel Model Card Benchmark: the 23-image model card, its first-try success rate and report."""

from __future__ import annotations

from ..core.benchmark.checks import parse_checks
from ..core.benchmark.model_card import CHECKS, load_card
from ..core.benchmark.results import write_outputs
from ..core.benchmark.run import FluxRenderer, run_benchmark, verdict_scope
from ..core.data.availability import missing_note
from ..core.data.images import images_to_tensor, load_image
from ..core.review.gate import wait_for_review
from ._comfy import check_interrupt, comfy_progress
from ._places import checked_python, user_files
from ._review_routes import remember_project, warm_thumbnails
from ._types import CATEGORY, PROJECT_INPUT
from .flux_node import FLUX_INPUT
from .review_node import _notifier


class FlenwheelModelCardBenchmark:
    DESCRIPTION = (
        "The flywheel's stop rule: renders the model card (5 angles x 4 expressions + T-pose, standing, "
        "sitting) with FLUX + the character LoRA, k tries per cell on fixed seeds, checks every image "
        "(identity, one face, resolution, sharpness, head angle, expression, body pose when a pose model is "
        "configured) and counts a success only when every criterion was verified (by a passing check or a "
        "person's correct) and nothing failed; a check that could not measure is never a failure. Writes "
        "benchmarks/<lora>/results.json, model_card.png and report.html; a rerun resumes and picks up new "
        "verdicts from the review page (stage benchmark)."
    ) + missing_note("face_mesh", "fer_emotion")
    CATEGORY = f"{CATEGORY}/benchmark"
    RETURN_TYPES = ("IMAGE", "FLOAT", "STRING", "STRING")
    RETURN_NAMES = ("card", "success_rate", "report_path", "summary")
    OUTPUT_TOOLTIPS = (
        "model_card.png: the first-try images with a coloured frame per check.",
        "First-try success rate (0..1); the card's target is 0.8.",
        "Path of report.html (self-contained: open it in a browser).",
        "The rates, the target, and how many images a person judged.",
    )
    FUNCTION = "benchmark"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "flux": FLUX_INPUT,
                "project": PROJECT_INPUT,
                "tries": ("INT", {"default": 4, "min": 1, "max": 32,
                                  "tooltip": "Tries per cell (k), each with its own fixed seed; try 0 is the first "
                                             "try the 80% target is judged on."}),
                "checks": ("STRING", {"default": ", ".join(CHECKS),
                                      "tooltip": "Automatic checks to run (comma list); the others are recorded as "
                                                 "not applicable."}),
                "review_mode": (["pass_through", "wait"], {
                    "default": "pass_through",
                    "tooltip": "pass_through: use the verdicts already given in the Review sidebar; wait: pause "
                               "after generating until the first tries have a verdict (correct / incorrect).",
                }),
            },
            "optional": {
                "card_file": ("STRING", {"default": "", "tooltip": "YAML merged over the built-in card "
                                                                   "(prompts, limits, cells); blank: built-in."}),
                "review_all_tries": ("BOOLEAN", {"default": False,
                                                 "tooltip": "In wait mode, wait for a verdict on every try."}),
                "timeout_minutes": ("INT", {"default": 120, "min": 0, "max": 10080,
                                            "tooltip": "How long wait mode waits (0: no limit); then the verdicts "
                                                       "given so far are used."}),
                "size": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 16,
                                 "tooltip": "Square render size overriding the card's 1024 (0: the card's); below "
                                            "1024 the resolution check fails."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 200,
                                  "tooltip": "Denoising steps overriding the card's 28 (0: the card's)."}),
                "base_seed": ("INT", {"default": 0, "min": 0, "max": 0x7FFFFFFF,
                                      "tooltip": "Seed the tries' seeds derive from; keep it for a v1 -> v2 "
                                                 "comparison."}),
                "name": ("STRING", {"default": "", "tooltip": "Benchmark folder name (blank: the LoRA's version, "
                                                              "e.g. char_v1)."}),
                "pose_python": ("STRING", {"default": "",
                                           "tooltip": "Python of an environment with mediapipe 0.10.21 for the body "
                                                      "pose check (blank: $FLENWHEEL_POSE_PYTHON, else pose is "
                                                      "left to the human verdict)."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        """Verdicts live outside the graph and a rerun only fills gaps, so never serve a cached result."""
        return float("nan")

    def benchmark(self, flux, project, tries, checks, review_mode, card_file="", review_all_tries=False,
                  timeout_minutes=120, size=0, steps=0, base_seed=0, name="", pose_python="", unique_id=None):
        render = {k: v for k, v in (("width", size), ("height", size), ("steps", steps)) if v}
        card = load_card(list(user_files(card_file, "card file")), tries=tries, base_seed=base_seed,
                         render=render or None)
        progress = comfy_progress(tries * len(card.cells(project.subject, project.token)))
        run = run_benchmark(
            project, FluxRenderer(flux), card, checks=parse_checks(checks), label=name.strip() or None,
            pose_python=checked_python(pose_python),
            on_image=lambda done, total, image, record: progress(done, total, image),
            step_callback=lambda step, total: check_interrupt(),
        )
        if review_mode == "wait":
            scope = verdict_scope(run, review_all_tries)
            warm_thumbnails(project, run.dataset)
            event = {"project": remember_project(project), "stage": "benchmark", "version": run.dataset.version,
                     "node": unique_id}
            wait_for_review(scope, timeout_minutes * 60.0, "pass_decided", _notifier(event))
        outputs = write_outputs(project, run.label, run.dataset)
        text = "\n".join(run.lines() + outputs.lines())
        rate = float(outputs.results["summary"]["first_try"]["rate"])
        card_image = images_to_tensor([load_image(outputs.card_path)])
        return {"ui": {"text": [text]}, "result": (card_image, rate, str(outputs.report_path), text)}


NODE_CLASS_MAPPINGS = {"FlenwheelModelCardBenchmark": FlenwheelModelCardBenchmark}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelModelCardBenchmark": "FLENwheel Model Card Benchmark"}
