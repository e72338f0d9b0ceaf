"""The edge step: decode and check each input record, dead-letter it or forward it by entity."""

from __future__ import annotations

from typing import Any, Protocol

from agents.dead_letter import Rejection, header_list, reject
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.errors import InvalidEvent
from kpi_state.routing import entity_key, partition_name
from kpi_state.stream_clock import StreamClock
from streams.decode import Decoder
from kpi_state.codec import FORWARDED, PROGRESS, PROGRESS_KEY, Forwarded, Progress

CRM_TYPES = frozenset({
    "call.logged", "email.sent", "meeting.booked", "demo.completed", "prospect.contacted",
    "opportunity.created", "opportunity.stage_changed", "opportunity.won", "opportunity.lost",
})
BILLING_TYPES = frozenset({"invoice.issued", "payment.received", "credit_note.issued", "spend.recorded"})


class SourceRecord(Protocol):
    """The parts of a consumed Kafka record used here (aiokafka's ConsumerRecord has them)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any
    timestamp: int | None  # milliseconds, as aiokafka gives it


class Edge:
    """No Faust here: records in, (entity key, forwarded bytes) and rejections out."""

    def __init__(
        self, decoder: Decoder, clock: StreamClock, metrics: PipelineMetrics,
        accepted: dict[str, frozenset[str]], keyed_by: dict[str, str] | None = None,
        history: frozenset[str] = frozenset(),
    ) -> None:
        self.decoder = decoder
        self.clock = clock
        self.metrics = metrics
        self.accepted = accepted  # topic -> event types it may carry
        # topic -> data field its Kafka key must equal (compacted topics such as sales.reps)
        self.keyed_by = keyed_by or {}
        self.history = history  # topics of history (backfill): no lateness limit

    def process(
        self, records: list[SourceRecord], wall_now: float
    ) -> tuple[list[tuple[bytes, bytes]], list[Rejection]]:
        forwards: list[tuple[bytes, bytes]] = []
        rejections: list[Rejection] = []
        counted: dict[str, int] = {}
        for record in records:
            counted[record.topic] = counted.get(record.topic, 0) + 1
            try:
                event = self.decoder.decode(record.value)
                if event.type not in self.accepted.get(record.topic, frozenset()):
                    raise InvalidEvent("unknown_type", f"type {event.type} does not belong on this topic")
                field = self.keyed_by.get(record.topic)
                if field and record.key is not None and record.key != getattr(event, field).encode():
                    raise InvalidEvent("key_mismatch", f"the record key differs from data.{field}")
                self.clock.check(partition_name(record.topic, record.partition), event.ts, wall_now,
                                 late_allowed=record.topic in self.history)
            except InvalidEvent as exc:
                rejections.append(self._reject(record, exc.reason, exc.detail))
                continue
            forwards.append((entity_key(event), FORWARDED.encode(Forwarded(
                record.key, record.value, header_list(record.headers), record.topic,
                record.partition, record.offset, record.timestamp, event,
            ))))
        for topic, count in counted.items():  # once per batch: labels() costs more than the event
            self.metrics.events_in.labels(topic).inc(count)
        return forwards, rejections

    def progress(self, changed: dict[str, float]) -> bytes | None:
        """The live input partitions' new stream times as one Progress item, None if none moved.

        History's partitions are left out: they never hold the watermark back.
        """
        live = {name: ts for name, ts in changed.items() if name.rsplit("|", 1)[0] not in self.history}
        return PROGRESS.encode(Progress(live)) if live else None

    def _reject(self, record: SourceRecord, reason: str, detail: str) -> Rejection:
        self.metrics.events_rejected.labels(reason).inc()
        if reason == "too_late":
            self.metrics.late.inc()
        return reject(
            key=record.key, value=record.value, headers=record.headers, reason=reason,
            detail=detail, topic=record.topic, partition=record.partition,
            offset=record.offset, timestamp_ms=record.timestamp,
        )
