"""LoRA trainers that run as their own process: FLUX.1-dev character LoRA and Qwen-Image-Edit-2509 LoRA.

``python -m flenwheel.trainers flux|qwen-edit --config cfg.yaml`` trains; ``launcher`` starts that
process from ComfyUI or scripts and reads its JSON-lines events. See docs/training.md.
"""
