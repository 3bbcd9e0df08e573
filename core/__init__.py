"""The ComfyUI-free engine: projects, datasets, images, models and every flywheel stage."""
