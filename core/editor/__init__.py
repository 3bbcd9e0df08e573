"""Flywheel 2: corrections, re-runs, triplets, their formats, exports and reports, and the editor comparison."""
