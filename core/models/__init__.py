"""Base models: the family registry, pipelines and their memory options, LoRA loading, single-file loaders and LoRA names."""
