"""FLENwheel Project: open (or create) the character project every other node works in."""

from __future__ import annotations

from ..core.data.project import DEFAULT_CLASS_WORD, DEFAULT_TOKEN, PROJECT_FILE, Project
from ._places import project_folder
from ._review_routes import remember_project
from ._types import CATEGORY, PROJECT


class FlenwheelProject:
    DESCRIPTION = (
        "Opens a FLENwheel character project folder (data, models, reviews, reports), creating it "
        "when asked. Wire its output into every other FLENwheel node."
    )
    CATEGORY = f"{CATEGORY}/project"
    RETURN_TYPES = (PROJECT, "STRING")
    RETURN_NAMES = ("project", "summary")
    OUTPUT_TOOLTIPS = ("The opened project.", "Name, token and current versions.")
    FUNCTION = "open"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "project_dir": ("STRING", {
                    "default": "flenwheel/my_character",
                    "tooltip": "Project folder; relative paths start in ComfyUI's output folder.",
                }),
                "create_if_missing": ("BOOLEAN", {"default": True,
                                                  "tooltip": "Create the project when the folder has none yet."}),
                "character_name": ("STRING", {"default": "my character",
                                              "tooltip": "Character name, used only when creating."}),
                "instance_token": ("STRING", {
                    "default": DEFAULT_TOKEN, "tooltip": "Rare word the LoRA learns as the character (creation only).",
                }),
                "class_word": ("STRING", {"default": DEFAULT_CLASS_WORD,
                                          "tooltip": "Class word after the token in captions (creation only)."}),
            }
        }

    def open(self, project_dir, create_if_missing, character_name, instance_token, class_word):
        root = project_folder(project_dir)
        if create_if_missing and not (root / PROJECT_FILE).exists():
            project = Project.init(root, character_name, instance_token, class_word)
        else:
            project = Project.open(root)
        remember_project(project)
        current = ", ".join(f"{k}={v}" for k, v in project.config.current.items()) or "nothing trained yet"
        return (project, f"{project.config.name} at {project.root} ({project.subject}); {current}")


NODE_CLASS_MAPPINGS = {"FlenwheelProject": FlenwheelProject}
NODE_DISPLAY_NAME_MAPPINGS = {"FlenwheelProject": "FLENwheel Project"}
