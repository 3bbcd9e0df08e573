"""The per-family trainer adapters: one module per base model, named by its registry entry's ``trainer_adapter``."""
