"""The worker's real stages (edge → entities → rollup → view) run in process, without a broker.

Tests feed input records in a chosen arrival order and get back what the worker would
have published: the last kpi.values record of every key, and the DLQ. The stages are the
product's own objects (agents.edge.Edge, agents.entities.EntityStep, agents.rollup_step.
RollupStep); only the broker is replaced: records move between stages through lists, keyed
and partitioned as the worker's internal topics are. There is no clock: the wall clock the
edge checks future timestamps against is an argument.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry

from agents.batches import forwarded_items
from agents.bench.steps import Record  # what the stages read of a consumed Kafka record
from agents.edge import BILLING_TYPES, CRM_TYPES, Edge
from agents.entities import EntityStep
from agents.rollup_step import RollupStep
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.directory import RepDirectory
from kpi_state.errors import InvalidEvent
from kpi_state.events import Event
from kpi_state.kpi_view import ViewConfig
from kpi_state.records import as_dict
from kpi_state.stream_clock import StreamClock
from streams.currency import Rates
from streams.decode import Decoder
from streams.settings import DEFAULT_STAGES

CRM, BILLING = "crm.events", "billing.events"
DAY = 86400.0
_BILLING_TYPES = (b'"invoice.', b'"payment.', b'"credit_note.', b'"spend.')


@dataclass(frozen=True)
class Input:
    """One record as a producer sent it: topic, input partition, key and value."""

    topic: str
    partition: int
    value: bytes
    key: bytes | None = None


@dataclass(frozen=True)
class Settings:
    """The worker settings the stages take (the defaults of streams.settings)."""

    tz: str = "UTC"
    stages: tuple[str, ...] = DEFAULT_STAGES
    currency: str = "EUR"
    lateness_s: float = 7 * DAY
    future_skew_s: float = 300.0
    dedup_horizon_s: float = 8 * DAY
    customer_lifetime_days: int = 1095
    partitions: int = 4  # of the internal topics (entity events, cells)
    batch: int = 500  # records per step batch, and per flush of cells and records


@dataclass
class Outcome:
    """What the worker published: the last record per kpi.values key, and the DLQ."""

    latest: dict[str, dict[str, Any]]
    dlq: list[tuple[str, str]] = field(default_factory=list)  # (event_id or raw text, reason), in order

    def values(self) -> dict[str, tuple]:
        """Each key's numbers and window, without the publication time."""
        return {
            key: (r["value"], r["numerator"], r["denominator"], r["window_start"], r["window_end"])
            for key, r in self.latest.items()
        }

    def dead_letters(self) -> Counter[tuple[str, str]]:
        return Counter(self.dlq)

    def by_reference_key(self) -> dict[tuple, dict[str, Any]]:
        """Records keyed as tests.oracle.reference keys its values."""
        out = {}
        for record in self.latest.values():
            window = record["window"]
            start = record["window_start"] if window in ("day", "week", "month", "quarter", "year") else ""
            dims = tuple(sorted(record["dims"].items()))
            out[(record["kpi"], record["scope"], window, start, dims)] = record
        return out


def topic_of(value: bytes) -> str:
    """The contract topic of a simulator record (billing types on billing.events)."""
    return BILLING if any(marker in value for marker in _BILLING_TYPES) else CRM


def partition_of(key: bytes | None, partitions: int) -> int:
    return zlib.crc32(key or b"") % partitions


def decoder(settings: Settings) -> Decoder:
    return Decoder(stages=settings.stages, rates=Rates(settings.currency), max_event_bytes=65536)


def _event_id(value: bytes | None) -> str:
    try:
        return str(json.loads(value or b"")["event_id"])
    except (ValueError, KeyError, TypeError):
        return (value or b"").decode("utf-8", "replace")


class _Partitions:
    """An internal topic: per partition, the records appended and how far the step read."""

    def __init__(self, topic: str, count: int) -> None:
        self.topic = topic
        self.items: list[list[tuple[bytes, bytes]]] = [[] for _ in range(count)]
        self.read = [0] * count

    def append(self, key: bytes, value: bytes, partition: int | None = None) -> None:
        """On `partition` when the writer chose it, else on its key's partition."""
        if partition is None:
            partition = partition_of(key, len(self.items))
        self.items[partition].append((key, value))

    def take(self, size: int) -> list[Record]:
        """Up to `size` unread records of each partition, partition after partition."""
        out = []
        for partition, items in enumerate(self.items):
            start = self.read[partition]
            chunk = items[start : start + size]
            out += [Record(self.topic, partition, offset, key, value)
                    for offset, (key, value) in enumerate(chunk, start)]
            self.read[partition] = start + len(chunk)
        return out


def run_pipeline(
    inputs: Sequence[Input],
    directory: dict[str, tuple[str, str]],
    *,
    wall_now: float,
    settings: Settings = Settings(),
    input_partitions: frozenset[str] | None = None,
) -> Outcome:
    """Every input record through the worker's steps, in the order given; then drain.

    `input_partitions` (`topic|partition`) are the inputs the worker's metadata would name:
    the watermark waits for those not heard from yet (the wall clock stands still here).
    """
    metrics = PipelineMetrics(CollectorRegistry())
    edge = Edge(decoder(settings), StreamClock(settings.lateness_s, settings.future_skew_s), metrics,
                {CRM: CRM_TYPES, BILLING: BILLING_TYPES})
    places = RepDirectory()
    for rep, (team, region) in directory.items():
        places.place(rep, team, region)
    entities = EntityStep(decoder=decoder(settings), directory=places, metrics=metrics, tz=settings.tz,
                           stages=settings.stages, dedup_horizon_s=settings.dedup_horizon_s)
    known = input_partitions or frozenset()
    entities.inputs_of = lambda: known
    rollup = RollupStep(ViewConfig(tz=settings.tz, stages=settings.stages, currency=settings.currency,
                                    customer_lifetime_days=Decimal(settings.customer_lifetime_days)))
    entity_events = _Partitions("entity-events", settings.partitions)
    cells = _Partitions("cells", settings.partitions)
    latest: dict[str, dict[str, Any]] = {}
    dlq: list[tuple[str, str]] = []
    offsets: Counter[tuple[str, int]] = Counter()
    stamp = wall_now

    def flush() -> None:
        # The worker's flush timer: cells of every engine, then the records that moved.
        for key, value in entities.cell_messages():
            cells.append(key, value)
        while batch := cells.take(settings.batch):
            rollup.process(batch)
        view = rollup.view
        for series in view.take_changed():
            for record in view.changed_records(series, "1970-01-01T00:00:00Z"):
                latest[record.key] = as_dict(record)

    def entity_step() -> None:
        while batch := entity_events.take(settings.batch):
            dlq.extend((_event_id(r.value), r.reason) for r in entities.process(batch, wall_now))
            entities.dirty_records()  # the state writes: encoded, as the worker does

    for start in range(0, len(inputs), settings.batch):
        records = []
        for item in inputs[start : start + settings.batch]:
            offset = offsets[(item.topic, item.partition)]
            offsets[(item.topic, item.partition)] += 1
            records.append(Record(item.topic, item.partition, offset, item.key, item.value, timestamp=int(stamp * 1000)))
        forwards, rejections = edge.process(records, wall_now)
        dlq.extend((_event_id(r.value), r.reason) for r in rejections)
        for partition, key, value in forwarded_items(edge, forwards, edge.clock.take_changed(), settings.partitions):
            entity_events.append(key, value, partition)
        entity_step()
        flush()
    return Outcome(latest, dlq)


def decode_all(values: Iterable[bytes], settings: Settings = Settings()) -> list[Event]:
    """The events that decode, in order (what the reference is given)."""
    dec = decoder(settings)
    events = []
    for value in values:
        try:
            events.append(dec.decode(value))
        except InvalidEvent:
            continue
    return events


def differences_from_reference(outcome: Outcome, reference: dict[tuple, Any]) -> list[str]:
    """Published values that the reference does not share (a zero or null record it lacks is fine)."""
    problems = []
    for key, record in sorted(outcome.by_reference_key().items(), key=lambda item: str(item[0])):
        if key[0] == "objective_attainment":
            continue
        expected = reference.get(key)
        got = record["value"]
        if expected is None:
            if got not in (None, 0, 0.0):
                problems.append(f"{key}: published {got}, the reference has no such key")
            continue
        want = None if expected.value is None else float(expected.value)
        if (got is None) != (want is None) or (
            got is not None and want is not None and abs(got - want) > 1e-6 * max(1.0, abs(want))
        ):
            problems.append(f"{key}: published {got}, reference {want}")
    return problems
