"""Pure KPI logic: event-time buckets, windows, aggregates. No I/O, no Faust."""
