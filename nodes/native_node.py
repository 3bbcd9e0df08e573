"""FLENwheel Flywheel Items and Save Flywheel Images: native ComfyUI graphs feed the flywheel.

Items turns a step's plan into ComfyUI lists (ComfyUI runs the nodes downstream once per item),
so the user's own loaders, samplers and ControlNets make the images; Save writes them back into
the planned dataset version with their lineage. The engine is ``core.graph``.
"""

from __future__ import annotations

from typing import Any

from ..core.data.handles import DatasetHandle
from ..core.data.images import images_to_tensor, load_image, tensor_to_images
from ..core.graph.items import STAGE_OF, plan_items
from ..core.graph.lineage import png_text, read_lineage
from ..core.graph.save import save_items
from ..core.identity.gate import DEFAULT_TOLERANCE, GATE_MODES, resolve_gate
from ._comfy import blocked_output
from ._places import user_files
from ._types import CATEGORY, DATASET, PROJECT_INPUT

MAX_SEED = 2**32 - 1
ITEMS_NAME = "FLENwheel Flywheel Items"
SAVE_NAME = "FLENwheel Save Flywheel Images"


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in (text or "").replace("\n", ",").split(",") if name.strip())


def _blocked() -> list[Any]:
    """A list output that skips the nodes wired to it (empty outside ComfyUI)."""
    blocker = blocked_output()
    return [] if blocker is None else [blocker]


class FlenwheelFlywheelItems:
    DESCRIPTION = (
        "Turns a flywheel step's plan into lists that ComfyUI maps the downstream nodes over, so your own "
        "loaders and samplers make the images: enrich gives one item per source x edit template (source "
        "image, edit prompt, seed, item id), generate one per prompt x variant, model_card one per card "
        "cell x try. Wire item_id into FLENwheel Save Flywheel Images. Queueing again leaves out items "
        "already in the dataset and retries drifted ones with new seeds."
    )
    CATEGORY = f"{CATEGORY}/native"
    RETURN_TYPES = ("IMAGE", "STRING", "INT", "STRING", "INT", "INT", DATASET, "STRING")
    RETURN_NAMES = ("source_image", "prompt", "seed", "item_id", "width", "height", "dataset", "summary")
    OUTPUT_IS_LIST = (True, True, True, True, True, True, False, False)
    OUTPUT_TOOLTIPS = (
        "The photo to edit, one per item (enrich only).",
        "The edit or generation prompt of each item.",
        "The seed of each item (wire it into the sampler so a re-run makes the same image).",
        "The id to hand to Save Flywheel Images with the item's image.",
        "The width the plan asks for (the prompt's or card cell's; the source photo's for enrich).",
        "The height the plan asks for (the prompt's or card cell's; the source photo's for enrich).",
        "Handle to the dataset version the items go into.",
        "Planned, already done and still to make.",
    )
    FUNCTION = "plan"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "step": (list(STAGE_OF), {"default": "generate", "tooltip": (
                    "enrich: sources x edit templates into data/enriched/vN; generate: the prompt set into "
                    "data/synthetic/vN; model_card: the card's cells x tries into data/benchmark/vN.")}),
                "base_seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": False,
                                      "tooltip": "Run seed; every item's seed derives from it (keep it fixed "
                                                 "to resume)."}),
                "per_source": ("INT", {"default": 4, "min": 1, "max": 20,
                                       "tooltip": "enrich: edits per source photo (the seed asks for 3-5)."}),
                "variants": ("INT", {"default": 0, "min": 0, "max": 64,
                                     "tooltip": "generate: images per prompt (0: the prompt set's default)."}),
                "tries": ("INT", {"default": 0, "min": 0, "max": 10,
                                  "tooltip": "model_card: tries per cell (0: the card's default)."}),
                "families": ("STRING", {"default": "", "tooltip": (
                    "Comma-separated template (enrich) or prompt (generate) families; blank: all.")}),
                "label": ("STRING", {"default": "char_v1", "tooltip": (
                    "model_card: which LoRA the card is for (char_v1, v2 ...); names benchmarks/<label>/. "
                    "generate: the LoRA the graph renders with; its training set and the newest card up to it "
                    "aim the plan (the summary shows the allocation).")}),
            },
            "optional": {
                "templates_file": ("STRING", {"default": "", "tooltip": "enrich: YAML file with your own families."}),
                "prompts_file": ("STRING", {"default": "", "tooltip": (
                    "generate: YAML prompt set extending the built-in.")}),
                "card_file": ("STRING", {"default": "", "tooltip": "model_card: YAML merged over the built-in card."}),
                "new_version": ("BOOLEAN", {"default": False, "tooltip": (
                    "Start a new dataset version instead of continuing the latest one planned the same way.")}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, **_kwargs):
        """The dataset changes between queues (saved items drop out), so plan afresh every time."""
        return float("nan")

    def plan(self, project, step, base_seed, per_source, variants, tries, families, label, templates_file="",
             prompts_file="", card_file="", new_version=False):
        plan = plan_items(project, step, per_source=per_source, families=_names(families), seed=base_seed,
                          template_files=user_files(templates_file, "templates file"),
                          prompt_files=user_files(prompts_file, "prompts file"),
                          variants=variants or None, card_files=user_files(card_file, "card file"),
                          tries=tries or None,
                          label=label.strip() or "char_v1", new_version=new_version)
        summary = "\n".join(plan.lines())
        handle = DatasetHandle(plan.dataset)
        if not plan.items:
            return (*[_blocked() for _ in range(6)], handle, summary)
        items = plan.items
        sources = [images_to_tensor([load_image(i.source)]) for i in items if i.source is not None]
        return (sources or _blocked(), [i.prompt for i in items], [i.seed for i in items], [i.id for i in items],
                [i.width for i in items], [i.height for i in items], handle, summary)


def _one(value: Any, default: Any = None) -> Any:
    """INPUT_IS_LIST hands every input as a list; widgets and the project are single values."""
    if isinstance(value, list):
        return value[0] if value else default
    return value if value is not None else default


class FlenwheelSaveFlywheelImages:
    DESCRIPTION = (
        "Writes the images a native graph made into the dataset version their item ids name, with full "
        "lineage: parents, prompt, seed, the base model and LoRAs read from the graph (UNETLoader, "
        "checkpoint and LoRA loaders), the sampler settings, and the graph itself in each PNG. Items already "
        "saved are skipped; a wrong id, a batch that does not match its ids or a finished version is refused "
        "before anything is written. Optionally scores identity: a drifted image is retried with a new seed "
        "on the next queue. Model card images are scored with the card's checks and the card is rewritten."
    )
    CATEGORY = f"{CATEGORY}/native"
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    RETURN_TYPES = (DATASET, "STRING", "STRING")
    RETURN_NAMES = ("dataset", "summary", "drifted")
    OUTPUT_TOOLTIPS = (
        "Handle to the dataset version (for review, the identity filter or training).",
        "Saved, already there, skipped and drifted counts.",
        "Item ids that drifted and will be retried with new seeds, one per line.",
    )
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project": PROJECT_INPUT,
                "images": ("IMAGE", {"tooltip": "The images the graph made, one per item (a list or a batch)."}),
                "item_id": ("STRING", {"forceInput": True, "tooltip": (
                    "From Flywheel Items: the id of each image, in the same order.")}),
                "identity_gate": (list(GATE_MODES), {"default": "off", "tooltip": (
                    "auto: score faces when face_recognition is installed; on: require it; off: no check. "
                    "Model card images are always scored with the card's checks.")}),
                "tolerance": ("FLOAT", {"default": DEFAULT_TOLERANCE, "min": 0.2, "max": 1.0, "step": 0.01,
                                        "tooltip": "Face distance up to which the identity counts as kept."}),
                "max_retries": ("INT", {"default": 2, "min": 0, "max": 10, "tooltip": (
                    "Queues that retry a drifted item with a new seed before it is kept marked drifted.")}),
            },
            "optional": {
                "checks": ("STRING", {"default": "", "tooltip": (
                    "model_card: comma-separated checks to run (blank: all).")}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"},
        }

    def save(self, project, images, item_id, identity_gate, tolerance, max_retries, checks=None, prompt=None,
             extra_pnginfo=None, unique_id=None):
        project = _one(project)
        pictures = [picture for batch in images for picture in tensor_to_images(batch)]
        graph, node_id = _one(prompt), _one(unique_id)
        scorer = resolve_gate(project, _one(identity_gate, "off"), _one(tolerance, DEFAULT_TOLERANCE))
        result = save_items(project, pictures, list(item_id), lineage=read_lineage(graph, node_id),
                            png_text=png_text(graph, _one(extra_pnginfo)), scorer=scorer,
                            max_retries=_one(max_retries, 2), checks=_one(checks) or None, node=SAVE_NAME)
        return (DatasetHandle(result.dataset), "\n".join(result.lines()), "\n".join(result.retry))


NODE_CLASS_MAPPINGS = {
    "FlenwheelFlywheelItems": FlenwheelFlywheelItems,
    "FlenwheelSaveFlywheelImages": FlenwheelSaveFlywheelImages,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "FlenwheelFlywheelItems": ITEMS_NAME,
    "FlenwheelSaveFlywheelImages": SAVE_NAME,
}
