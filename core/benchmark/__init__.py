"""The model card: its cells, automatic checks, run, results, card sheet, HTML report and version comparison."""
