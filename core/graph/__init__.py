"""Native ComfyUI graphs feed the flywheel: plans as items out, rendered images back into datasets."""
