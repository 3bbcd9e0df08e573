"""The whole flywheel turn, its config, and the offline demo."""
