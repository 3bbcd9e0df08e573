"""Identity: face encodings, references, scoring, the enrichment gate, the identity filter (step 1.6),
head and body pose.
"""
