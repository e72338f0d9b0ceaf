"""`kpi-pipeline bench`: baseline consumer, the full pipeline, latency, memory, scale (issue 11)."""
