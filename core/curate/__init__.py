"""Step 1.1: bringing source photos in, with quality and face checks."""
