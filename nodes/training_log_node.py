"""FLENwheel Training Log: a run's loss curve as an image, from any project version or run folder."""

from __future__ import annotations

from pathlib import Path

from ..core.data.errors import FlenwheelError
from ..core.data.images import images_to_tensor
from ..core.models.registry import CHARACTER, default_family, family, family_names
from ..core.training.loss_plot import plot_losses
from ..core.training.planning import lora_versions
from ..trainers.protocol import LOG_FILE, loss_history, read_log
from ._places import checked_path
from ._types import CATEGORY, PROJECT_INPUT


class FlenwheelLoadTrainingLog:
    DESCRIPTION = (
        "Reads a run's train_log.jsonl (a project LoRA version, or any run folder) and draws its loss curve: "
        "raw loss, moving average and checkpoint marks. Works while training is still running."
    )
    CATEGORY = f"{CATEGORY}/train"
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("loss_plot", "summary")
    OUTPUT_TOOLTIPS = ("The loss curve.", "Steps logged, first and last loss.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "kind": (
                    list(family_names()),
                    {"default": default_family(CHARACTER).name, "tooltip": "Which LoRA family to look at."},
                ),
                "version": ("STRING", {"default": "latest", "tooltip": "LoRA version (latest or vN)."}),
            },
            "optional": {
                "project": PROJECT_INPUT,
                "run_folder": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "A run folder or train_log.jsonl instead of a project version.",
                    },
                ),
            },
        }

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def load(self, kind, version, project=None, run_folder=""):
        folder = _run_folder(kind, version, project, run_folder)
        log = folder / LOG_FILE if folder.is_dir() else folder
        if not log.is_file():
            raise FlenwheelError(f"no training log at {log}; has this version been trained?")
        history = loss_history(read_log(log))
        summary = f"{log}: {len(history)} steps"
        if history:
            summary += (
                f", loss {history[0][1]:.4f} at step {history[0][0]} -> {history[-1][1]:.4f} at step "
                f"{history[-1][0]}"
            )
        return (images_to_tensor([plot_losses(log, title=log.parent.name)]), summary)


def _run_folder(kind: str, version: str, project, run_folder: str) -> Path:
    if run_folder.strip():
        return checked_path(run_folder, "run folder")
    if project is None:
        raise FlenwheelError("connect a project or give a run_folder")
    found = lora_versions(project, kind)
    chosen = version.strip()
    if chosen in ("", "latest"):
        if not found:
            raise FlenwheelError(f"the project has no {kind} LoRA versions yet")
        chosen = f"v{found[-1]}"
    return family(kind).lora.version_folder(project.root, chosen)


NODE_CLASS_MAPPINGS = {"FlenwheelLoadTrainingLog": FlenwheelLoadTrainingLog}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelLoadTrainingLog": "FLENwheel Training Log (loss plot)"}
