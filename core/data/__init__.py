"""The data contract: projects, dataset versions, image records and their lineage, atomic writes, safe
image IO, user-facing errors, the optional-dependency guards and the shared vocabulary.
"""
