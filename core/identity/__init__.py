"""Identity: face finding and the readings the card and the loop keep, face encodings, references,
scoring (face_recognition or an optional ArcFace model), the enrichment gate, the identity filter
(step 1.6) and the coverage of a set of images.
"""
