"""ComfyUI tooling that needs no ComfyUI: the API client, terminal display, object_info, node specs and
workflow format and checks.
"""
