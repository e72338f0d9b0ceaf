"""Every internal record format (state topics, internal topics) and its one msgpack codec."""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, Literal, TypeVar

import msgspec

from kpi_state.activity import ActivityState
from kpi_state.alerts import AlertState
from kpi_state.customer import CustomerState
from kpi_state.day_cells import CellUpdate
from kpi_state.entity import EntityRecord
from kpi_state.events import Event
from kpi_state.opportunity import OpportunityState
from kpi_state.opportunity_history import OpportunityHistory
from kpi_state.spend import SpendState

T = TypeVar("T")


class Codec(Generic[T]):
    """One record type to and from msgpack bytes.

    The bytes are read back by later runs (state topics, changelogs), so a codec's type and
    decimal format are part of the stored format: change them only with a migration.
    """

    def __init__(self, kind: type[T], decimal_format: Literal["string", "number"] = "string") -> None:
        self.kind = kind
        self._encoder = msgspec.msgpack.Encoder(decimal_format=decimal_format)
        self._decoder = msgspec.msgpack.Decoder(kind)

    def encode(self, value: T) -> bytes:
        return self._encoder.encode(value)

    def decode(self, raw: bytes) -> T:
        return self._decoder.decode(raw)


class Forwarded(msgspec.Struct, array_like=True):
    """An input record re-keyed by entity, carried unchanged so a later step can dead-letter it.

    `event` is what the edge decoded from `value`: the entity step reads it back from
    msgpack instead of parsing and checking the JSON a second time.
    """

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    event: Event | None = None


class Bundle(msgspec.Struct, array_like=True):
    """Many (key, value) records of one internal-topic partition in one Kafka record.

    A send and a fetch cost the same per Kafka record whatever it carries, so the steps
    write one bundle per partition and batch instead of one record per event or cell.
    Each item keeps its key, so the reader sees the records it would have seen unbundled.
    """

    items: list[tuple[bytes, bytes]]


class Cells(msgspec.Struct, array_like=True):
    """Absolute day cells of one scope from one entity partition (replacing earlier ones)."""

    partition: int
    newest_ts: float
    days: dict[str, tuple[dict[str, Decimal], dict[str, list[str]]]]

    @classmethod
    def of(cls, partition: int, newest_ts: float, days: dict[str, CellUpdate]) -> Cells:
        return cls(partition, newest_ts, {day: (u.values, u.members) for day, u in days.items()})


class StoredParts(msgspec.Struct, array_like=True):
    """The rollup table value of one (scope, day): what each entity partition last said about it."""

    newest_ts: float
    parts: dict[int, tuple[dict[str, str], dict[str, list[str]]]]


class EngineClock(msgspec.Struct, array_like=True):
    """The newest event time judged, and per source partition the newest seen from it."""

    now: float | None = None
    sources: dict[str, float] = msgspec.field(default_factory=dict)


class Outgoing(msgspec.Struct):
    """One alert record waiting to be sent (or to be found already sent after a crash)."""

    id: str
    key: str  # `{kpi}|{scope}|{window}`, the kpi.alerts key
    record: bytes  # the JSON body, built once so a re-send is byte-identical
    published: bool = False  # on kpi.alerts (acknowledged); the entry stays until notified


class ScopeAlerts(msgspec.Struct, omit_defaults=True):
    """The persisted alert state of one scope: states by `{kpi}|{window}` and its outbox."""

    states: dict[str, AlertState] = {}
    day: str = ""  # the last local day judged (a restart never judges a day twice)
    outbox: list[Outgoing] = []
    firing: dict[str, bytes] = {}  # `{kpi}|{window}` → the firing record (active alerts)


# Internal topics.
BUNDLE = Codec(Bundle)  # the Kafka record of both internal topics
FORWARDED = Codec(Forwarded)  # kpi.internal entity events
CELLS = Codec(Cells)  # partial day cells, entity step → rollup step
# The entity step's state topic: an envelope per entity, its body in the kind's own codec.
ENTITY_RECORD = Codec(EntityRecord)
ENGINE_CLOCK = Codec(EngineClock)
ACTIVITY = Codec(ActivityState)
CUSTOMER = Codec(CustomerState)
OPPORTUNITY = Codec(OpportunityState)
OPPORTUNITY_HISTORY = Codec(OpportunityHistory)
SPEND = Codec(SpendState)
# The rollup step's state topic.
STORED_PARTS = Codec(StoredParts)
SCOPE_ALERTS = Codec(ScopeAlerts)
