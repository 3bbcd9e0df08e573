"""Steps 1.2 and 2.3: edit templates, the enrichment plan and engine, and its report."""
