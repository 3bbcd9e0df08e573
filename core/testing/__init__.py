"""Tiny random-weight models, ComfyUI-style single files and LoRAs, built offline for tests and the demo."""
