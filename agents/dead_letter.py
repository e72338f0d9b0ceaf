"""Rejections: a record bound for the DLQ with its original bytes and the error headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.dlq import Header, dlq_headers


@dataclass(frozen=True)
class Rejection:
    key: bytes | None
    value: bytes | None
    headers: list[Header]
    reason: str


def header_list(headers: Any) -> list[Header]:
    """Kafka headers as (name, bytes) pairs, whatever shape the client gave them in."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(name, value if isinstance(value, bytes) else bytes(value or b"")) for name, value in items]


def reject(
    *, key: bytes | None, value: bytes | None, headers: Any, reason: str, detail: str,
    topic: str, partition: int, offset: int, timestamp_ms: int | None,
) -> Rejection:
    return Rejection(
        key,
        value,
        dlq_headers(
            header_list(headers), reason=reason, detail=detail, topic=topic,
            partition=partition, offset=offset, timestamp_ms=timestamp_ms,
        ),
        reason,
    )
