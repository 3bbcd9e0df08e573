"""Planning a LoRA version from a project and launching the trainer process; its loss plot."""
