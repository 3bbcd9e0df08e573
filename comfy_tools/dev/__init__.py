"""Developer tooling: the node reference, the workflow builder and the pack's template descriptions."""
