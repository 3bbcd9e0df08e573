"""FLENwheel Review Gate: human review (steps 1.3 and 1.7) as a node that waits or passes through."""

from __future__ import annotations

import time

from ..core.data.images import images_to_tensor, tensor_to_images
from ..core.review.gate import SLOTS, finish, scope_for, wait_for_review
from ..core.review.stages import REVIEW_STAGES
from ._comfy import blocked_output, check_interrupt, send_event
from ._review_routes import remember_project, warm_thumbnails
from ._types import CATEGORY, DATASET, PROJECT_INPUT, version_or_none

EVENT_WAITING = "flenwheel.review.waiting"
EVENT_DONE = "flenwheel.review.done"
NOTIFY_EVERY_S = 3.0


class FlenwheelReviewGate:
    DESCRIPTION = (
        "Human review in the FLENwheel Review sidebar (or `flenwheel review serve`). Wait mode pauses the "
        "graph until every image has a verdict; pass-through returns only what is already decided. "
        "Decisions are saved the moment they are made and files are placed into good/, corrections/, "
        "rejected/ or data/pristine/vN/. Outputs one batch and dataset per verdict plus a summary."
    )
    CATEGORY = f"{CATEGORY}/review"
    RETURN_TYPES = ("IMAGE", DATASET, "IMAGE", DATASET, "IMAGE", DATASET, "STRING")
    RETURN_NAMES = ("accepted_images", "accepted", "correction_images", "corrections", "rejected_images",
                    "rejected", "summary")
    OUTPUT_TOOLTIPS = (
        "Images labelled good (enriched), pristine (synthetic) or correct (benchmark); when there are none, "
        "the nodes wired to it are skipped.",
        "Dataset handle of the accepted images (pristine picks come from data/pristine/vN).",
        "Images labelled needs_correction (enriched only); when there are none, the nodes wired to it are skipped.",
        "Dataset handle of the images that need correction, with their reasons in the records.",
        "Rejected (or incorrect) images; when there are none, the nodes wired to it are skipped.",
        "Dataset handle of the rejected images, with their reasons.",
        "Counts, reasons and the seed's criteria (all reviewed, 30+ good, reasons, 10+ pristine).",
    )
    FUNCTION = "review"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "stage": (list(REVIEW_STAGES), {
                    "default": "enriched",
                    "tooltip": "enriched: good / needs_correction / reject (step 1.3); synthetic: pick the "
                               "pristine set (step 1.7); benchmark: model card verdicts.",
                }),
                "mode": (["wait", "pass_through"], {
                    "default": "wait",
                    "tooltip": "wait: pause until every image is decided in the review page; pass_through: "
                               "continue at once with the decisions made so far (for scripted runs).",
                }),
                "timeout_minutes": ("INT", {
                    "default": 120, "min": 0, "max": 10080,
                    "tooltip": "How long wait mode waits for the reviewer; 0 waits without limit.",
                }),
                "on_timeout": (["fail", "pass_decided"], {
                    "default": "fail",
                    "tooltip": "At the timeout: fail the run (decisions stay saved), or go on with what "
                               "is decided.",
                }),
            },
            "optional": {
                "dataset": (DATASET, {"tooltip": "Images to review as a dataset handle (e.g. from "
                                                 "enrichment or the identity filter); wins over images."}),
                "images": ("IMAGE", {"tooltip": "Images to review when no dataset is wired; they are added "
                                                "to the stage's open dataset version first."}),
                "version": ("STRING", {"default": "latest",
                                       "tooltip": "Version when no dataset is wired: 'latest' or vN."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        """Decisions live outside the graph, so a cached result would be stale: never cache."""
        return float("nan")

    def review(self, project, stage, mode, timeout_minutes, on_timeout, dataset=None, images=None,
               version="latest", unique_id=None):
        pictures = tensor_to_images(images) if images is not None and dataset is None else []
        scope = scope_for(project, stage, handle=dataset, version=version_or_none(version), images=pictures)
        key = remember_project(project)
        event = {"project": key, "stage": stage, "version": scope.version, "node": unique_id}
        timed_out = False
        if mode == "wait":
            warm_thumbnails(project, scope.dataset)
            timed_out = wait_for_review(scope, timeout_minutes * 60.0, on_timeout, _notifier(event))
        result = finish(scope, timed_out)
        send_event(EVENT_DONE, event | {"summary": result.summary.to_json()})
        outputs = []
        for slot in SLOTS:
            handle = result.handles[slot]
            loaded = handle.load_images()
            # an empty IMAGE batch crashes Preview/Save Image, so an empty verdict blocks what it feeds
            outputs += [images_to_tensor(loaded) if loaded else blocked_output(), handle]
        text = result.text()
        return {"ui": {"text": [text]}, "result": (*outputs, text)}


def _notifier(event: dict):
    """Between polls: honour Cancel, and tell the page (at most every few seconds) what is pending."""
    last = [float("-inf")]

    def tick(pending: int, total: int) -> None:
        check_interrupt()
        now = time.monotonic()
        if pending and now - last[0] >= NOTIFY_EVERY_S:
            last[0] = now
            send_event(EVENT_WAITING, event | {"pending": pending, "total": total})

    return tick


NODE_CLASS_MAPPINGS = {"FlenwheelReviewGate": FlenwheelReviewGate}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelReviewGate": "FLENwheel Review Gate"}
