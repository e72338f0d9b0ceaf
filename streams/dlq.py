"""Dead-letter records: the original bytes untouched, plus the kpi.error.* headers of contract §3."""

from __future__ import annotations

from collections.abc import Sequence

Header = tuple[str, bytes]

REASONS = (
    "not_json",
    "not_object",
    "too_large",
    "unknown_type",
    "missing_field",
    "bad_type",
    "bad_value",
    "unknown_currency",
    "unknown_stage",
    "invalid_transition",
    "inconsistent_total",
    "conflicting_duplicate",
    "too_late",
    "future_timestamp",
    "orphaned",  # held for the event that makes it valid, past the lateness horizon unmatched
    "key_mismatch",  # added: a compacted topic's key differs from the body's id
    "internal_error",  # added: the pipeline itself failed on this record (a bug; logged)
)


def dlq_headers(
    original: Sequence[Header] | None,
    *,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
) -> list[Header]:
    """The original headers, in order, followed by the error and provenance headers."""
    headers = list(original or ())
    headers += [
        ("kpi.error.reason", reason.encode()),
        # Details are written by us and never carry payload values; cap them anyway.
        ("kpi.error.detail", detail[:500].encode()),
        ("kpi.source.topic", topic.encode()),
        ("kpi.source.partition", str(partition).encode()),
        ("kpi.source.offset", str(offset).encode()),
        ("kpi.source.timestamp", str(timestamp_ms if timestamp_ms is not None else "").encode()),
    ]
    return headers
