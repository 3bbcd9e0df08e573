"""Base models: the family registry, pipelines and memory options, LoRA loading, single-file loaders, LoRA names."""
