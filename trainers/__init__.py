"""LoRA trainers that run as their own process, one adapter per model family (``families/``).

``python -m flenwheel.trainers FAMILY --config cfg.yaml`` trains (FAMILY: a name from
``core.models.registry``, e.g. ``flux`` or ``qwen-edit``); ``core.training.launcher`` starts that
process from ComfyUI or scripts and reads its JSON-lines events. See docs/training.md.
"""
