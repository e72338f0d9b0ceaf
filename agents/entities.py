"""The entity step: one PartitionEngine per owned partition of the entity-events topic."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from agents.dead_letter import Rejection, reject
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.directory import RepDirectory
from kpi_state.errors import InvalidEvent
from kpi_state.partition_engine import APPLIED, PartitionEngine
from kpi_state.routing import fingerprint, fingerprint_of_encoded, partition_name
from streams.decode import Decoder
from kpi_state.codec import CELLS, EVENT, FORWARDED, FORWARDED_HEAD, PROGRESS, PROGRESS_KEY, Cells

from kpi_state.entity import DUPLICATE, HELD, REPLAYED


log = logging.getLogger(__name__)


def table_key(partition: int, entity: bytes) -> bytes:
    """State keys carry their partition: after recovery each engine takes back its own."""
    return b"%d|" % partition + entity


def split_table_key(key: bytes) -> tuple[int, bytes]:
    partition, _, entity = key.partition(b"|")
    return int(partition), entity


def input_sources(consumer: Any, topics: tuple[str, ...]) -> frozenset[str]:
    """`topic|partition` of every partition of `topics` the consumer's metadata knows."""
    return frozenset(
        partition_name(topic, partition) for topic in topics for partition in consumer.partition_ids(topic)
    )


class EntityStep:
    """No Faust here: forwarded records in; rejections, state writes and cell messages out."""

    def __init__(self, *, decoder: Decoder, directory: RepDirectory, metrics: PipelineMetrics,
                 tz: str, stages: tuple[str, ...], dedup_horizon_s: float,
                 lateness_s: float = 7 * 86400, backfill_topic: str | None = None,
                 input_patience_s: float = 10.0) -> None:
        self.decoder = decoder
        self.directory = directory
        self.metrics = metrics
        self.options = dict(tz=tz, stages=stages, dedup_horizon_s=dedup_horizon_s, lateness_s=lateness_s)
        self.engines: dict[int, PartitionEngine] = {}
        # History does not hold the watermark back: once replayed, its partitions go quiet
        # at the end of the export, and judging would wait for them forever.
        self.backfill_topic = backfill_topic
        # Every input partition (`topic|partition`) that exists, as the worker's metadata
        # tells (set by the app): one not heard from yet holds every engine's watermark
        # back, for at most `input_patience_s` of wall time (PartitionEngine.expect).
        self.inputs_of: Callable[[], frozenset[str]] = frozenset
        self.input_patience_s = input_patience_s

    def engine(self, partition: int) -> PartitionEngine:
        engine = self.engines.get(partition)
        if engine is None:
            engine = self.engines[partition] = PartitionEngine(directory=self.directory, **self.options)
        return engine

    def expect_inputs(self, wall_now: float) -> bool:
        """Tell the engines which inputs exist; True when a watermark just stopped waiting for one."""
        ended = False
        inputs = self.inputs_of()
        for engine in self.engines.values():
            ended |= engine.expect(inputs, wall_now, self.input_patience_s)
        return ended

    def process(self, messages: list[Any], wall_now: float | None = None) -> list[Rejection]:
        """Apply a batch; `wall_now` (when given) times the wait for inputs not heard from yet."""
        rejections = []
        # Counted once per batch: a labelled counter costs more than applying an event.
        applied: dict[str, int] = {}
        held: dict[str, int] = {}
        duplicates = replayed = 0
        for message in messages:
            if message.key == PROGRESS_KEY:  # an edge's stream times, no event
                self.engine(message.partition).heard(PROGRESS.decode(message.value).newest)
                continue
            original = FORWARDED_HEAD.decode(message.value)
            encoded = original.encoded_event()
            if encoded is not None:
                event = EVENT.decode(encoded)
                digest = fingerprint_of_encoded(encoded)
            else:  # forwarded by an edge that did not carry the decoded event
                try:
                    event = self.decoder.decode(original.value)
                except InvalidEvent as exc:
                    rejections.append(self._reject(original, exc.reason, exc.detail))
                    continue
                digest = fingerprint(event)
            engine = self.engine(message.partition)
            origin = partition_name(original.topic, original.partition)
            try:
                # Replays are told by the input offset, never the entity-events one: the
                # same event forwarded twice (an edge restarted) has the same input offset
                # (kpi_state.entity.EntityRecord).
                # The item's key is the edge's entity_key(event): not worked out again.
                outcome = engine.apply(
                    message.key, event, original.offset, digest, message.value,
                    None if original.topic == self.backfill_topic else origin, origin,
                )
            except Exception:  # noqa: BLE001 - a bug must cost one record, never the stream
                log.exception(
                    "internal error applying %s at %s[%d]@%d; record dead-lettered",
                    event.type, original.topic, original.partition, original.offset,
                )
                rejections.append(self._reject(original, "internal_error", "the pipeline failed on this record"))
                continue
            if outcome == APPLIED:
                applied[event.type] = applied.get(event.type, 0) + 1
            elif outcome == HELD:
                held[event.type] = held.get(event.type, 0) + 1
            elif outcome == DUPLICATE:
                duplicates += 1
            elif outcome == REPLAYED:
                replayed += 1
            else:
                rejections.append(self._reject(original, outcome, _DETAILS.get(outcome, outcome)))
        for kind, count in applied.items():
            self.metrics.events_applied.labels(kind).inc(count)
        for kind, count in held.items():
            self.metrics.events_held.labels(kind).inc(count)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        if replayed:
            self.metrics.replayed.inc(replayed)
        if wall_now is not None:
            self.expect_inputs(wall_now)
        # Withdrawn and orphaned events leave before the state that no longer holds them.
        for engine in self.engines.values():
            if engine.now is not None:
                engine.advance(engine.now)
            for dead in engine.take_dead():
                if dead.raw is None:
                    continue
                original = FORWARDED.decode(dead.raw)
                detail = _WITHDRAWN.get(dead.reason, dead.reason)
                rejections.append(self._reject(original, dead.reason, detail))
        return rejections

    def held(self) -> int:
        """Events waiting on their entity for the event that makes them valid."""
        return sum(engine.held_events() for engine in self.engines.values())

    def dirty_records(self) -> list[tuple[int, bytes, bytes]]:
        """(partition, table key, encoded record) of every entity changed since last time."""
        return [
            (partition, table_key(partition, entity), raw)
            for partition, engine in self.engines.items()
            for entity, raw in engine.take_dirty().items()
        ]

    def cell_messages(self) -> list[tuple[bytes, bytes]]:
        """(scope, packed cells) per scope whose day cells changed, from every engine."""
        out = []
        for partition, engine in self.engines.items():
            by_scope: dict[str, dict] = defaultdict(dict)
            for (scope, day), update in engine.take_cells().items():
                by_scope[scope][day] = update
            for scope, days in by_scope.items():
                out.append((scope.encode(), CELLS.encode(Cells.of(partition, engine.now or 0.0, days))))
        return out

    def recover(self, items: list[tuple[bytes, bytes]], partitions: set[int]) -> None:
        """Rebuild the engines of `partitions` from recovered table items."""
        self.engines = {}
        for key, raw in items:
            partition, entity = split_table_key(key)
            if partition in partitions:
                self.engine(partition).load(entity, raw)
        self.rebuild()

    def rebuild(self) -> None:
        # Every cell is re-sent: the rollup may have missed the last flush before a crash.
        for engine in self.engines.values():
            engine.rebuild()

    def _reject(self, original: Any, reason: str, detail: str) -> Rejection:
        self.metrics.events_rejected.labels(reason).inc()
        return reject(
            key=original.key, value=original.value, headers=original.headers, reason=reason,
            detail=detail, topic=original.topic, partition=original.partition,
            offset=original.offset, timestamp_ms=original.timestamp_ms,
        )


_DETAILS = {
    "conflicting_duplicate": "event_id already seen with different content",
    "invalid_transition": "not possible in the entity's state at its event time",
}
_WITHDRAWN = {
    "invalid_transition": "withdrawn: an event dated before it makes it invalid",
    "orphaned": "held past the lateness horizon: the event that makes it valid never came",
}
