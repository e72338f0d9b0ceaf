"""Everything that leaves the process: Prometheus, kpi.values, Redis, HTTP views."""
