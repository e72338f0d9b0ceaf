"""Applies one batch of input records to the KPI state; bad records become DLQ rejections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kpi_state.catalogue import ACTIVITY_EVENT_KPI
from kpi_state.count_book import CountBook
from kpi_state.errors import InvalidEvent
from exporters.pipeline_metrics import PipelineMetrics
from streams.decode import Decoder
from streams.dlq import Header, dlq_headers


class SourceRecord(Protocol):
    """The parts of a consumed Kafka record we use (Faust's Message has them all)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any
    timestamp: float | None


@dataclass(frozen=True)
class Rejection:
    """A record bound for the dead-letter topic, unchanged, with its error headers."""

    key: bytes | None
    value: bytes | None
    headers: list[Header]
    reason: str


class Ingestor:
    """Decode → apply to `kpi_state` → remember what to persist; no Faust here."""

    def __init__(self, book: CountBook, decoder: Decoder, metrics: PipelineMetrics) -> None:
        self.book = book
        self.decoder = decoder
        self.metrics = metrics

    def ingest(self, records: list[SourceRecord]) -> list[Rejection]:
        rejections: list[Rejection] = []
        for record in records:
            rejection = self._one(record)
            if rejection is not None:
                rejections.append(rejection)
        return rejections

    def _one(self, record: SourceRecord) -> Rejection | None:
        self.metrics.events_in.labels(record.topic).inc()
        try:
            event = self.decoder.decode(record.value)
        except InvalidEvent as exc:
            return self._reject(record, exc.reason, exc.detail)
        event_type = event.type
        kpi = ACTIVITY_EVENT_KPI.get(event_type)
        if kpi is not None:
            applied = self.book.apply(record.partition, record.offset, event.rep_id, kpi, event.ts)
            if not applied:
                self.metrics.replayed.inc()
                return None
        self.metrics.events_applied.labels(event_type).inc()
        return None

    def _reject(self, record: SourceRecord, reason: str, detail: str) -> Rejection:
        self.metrics.events_rejected.labels(reason).inc()
        timestamp = record.timestamp
        headers = dlq_headers(
            _header_list(record.headers),
            reason=reason,
            detail=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=int(timestamp * 1000) if timestamp is not None else None,
        )
        return Rejection(record.key, record.value, headers, reason)


def _header_list(headers: Any) -> list[Header]:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(name, value if isinstance(value, bytes) else bytes(value)) for name, value in items]
