"""Every internal record format (state topics, internal topics) and its one msgpack codec."""

from __future__ import annotations

import uuid
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
from kpi_state.opportunity_history import Fact, OpportunityHistory
from kpi_state.rep_days import RepDay
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


class _InputRecord(msgspec.Struct, array_like=True):
    """The fields of an input record that a later step needs to dead-letter it."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


class Forwarded(_InputRecord, array_like=True):
    """An input record re-keyed by entity, carried unchanged so a later step can dead-letter it.

    `event` is what the edge decoded from `value`: the entity step reads it back from
    msgpack instead of parsing and checking the JSON a second time.
    """

    event: Event | None = None


# msgpack's nil: a Forwarded written without its decoded event.
_NIL = msgspec.Raw(b"\xc0")


class ForwardedHead(_InputRecord, array_like=True):
    """A Forwarded read with its event left as the msgpack bytes the edge wrote.

    The entity step digests those bytes for the event's fingerprint (they are the event's
    own encoding, kpi_state.routing.fingerprint) instead of encoding the decoded event
    again, then decodes them once.
    """

    event: msgspec.Raw = _NIL

    def encoded_event(self) -> msgspec.Raw | None:
        """The event's msgpack bytes, None when the edge did not carry it."""
        event = self.event
        return None if len(event) == 1 and bytes(event) == b"\xc0" else event


class Progress(msgspec.Struct, array_like=True):
    """How far the edge has read its input partitions: `topic|partition` → newest event time.

    Sent to every entity partition, after the batch's events, so that a partition whose
    events all went elsewhere still counts for each engine's watermark (the edge rejects
    anything later than the lateness limit behind these times).
    """

    newest: dict[str, float]


# The key of an entity-events item that is a Progress, not an event: no entity key is
# empty (kpi_state.routing.entity_key).
PROGRESS_KEY = b""


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


class StoredFact(msgspec.Struct, array_like=True, gc=False):
    """`Fact` as stored: the event id packed (a UUID in 17 bytes instead of 38)."""

    ts: float
    event_id: bytes  # b"u" + the 16 bytes of a UUID in canonical text, else b"s" + the id's UTF-8
    kind: int
    rep_id: str
    stage: str | None = None
    amount: Decimal | None = None
    raw: bytes | None = None


class StoredHistory(msgspec.Struct, array_like=True):
    opportunity_id: str
    facts: list[StoredFact]


def pack_id(event_id: str) -> bytes:
    if len(event_id) == 36:
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            parsed = None
        # Only the canonical spelling: unpacking must give back the very same id.
        if parsed is not None and str(parsed) == event_id:
            return b"u" + parsed.bytes
    return b"s" + event_id.encode()


def unpack_id(packed: bytes) -> str:
    return str(uuid.UUID(bytes=packed[1:])) if packed[:1] == b"u" else packed[1:].decode()


class HistoryCodec:
    """Opportunity histories: most of a settled opportunity's stored bytes are its event ids."""

    def __init__(self) -> None:
        self._codec = Codec(StoredHistory)

    def encode(self, value: OpportunityHistory) -> bytes:
        facts = [StoredFact(f.ts, pack_id(f.event_id), f.kind, f.rep_id, f.stage, f.amount, f.raw)
                 for f in value.facts]
        return self._codec.encode(StoredHistory(value.opportunity_id, facts))

    def decode(self, raw: bytes) -> OpportunityHistory:
        stored = self._codec.decode(raw)
        facts = [Fact(f.ts, unpack_id(f.event_id), f.kind, f.rep_id, f.stage, f.amount, f.raw)
                 for f in stored.facts]
        return OpportunityHistory(opportunity_id=stored.opportunity_id, facts=facts)


# Internal topics.
BUNDLE = Codec(Bundle)  # the Kafka record of both internal topics
FORWARDED = Codec(Forwarded)  # kpi.internal entity events
FORWARDED_HEAD = Codec(ForwardedHead)  # the same records, their event left encoded
EVENT = Codec(Event)  # an event inside a Forwarded (ForwardedHead.event)
PROGRESS = Codec(Progress)  # the entity-events items keyed PROGRESS_KEY (agents.edge)
CELLS = Codec(Cells)  # partial day cells, entity step → rollup step
# The entity step's state topic: an envelope per entity, its body in the kind's own codec.
ENTITY_RECORD = Codec(EntityRecord)
ENGINE_CLOCK = Codec(EngineClock)
REP_DAY = Codec(RepDay)  # a rep's arrival day (kpi_state.rep_days)
ACTIVITY = Codec(ActivityState)
CUSTOMER = Codec(CustomerState)
OPPORTUNITY = Codec(OpportunityState)
OPPORTUNITY_HISTORY = HistoryCodec()
SPEND = Codec(SpendState)
# The rollup step's state topic.
STORED_PARTS = Codec(StoredParts)
SCOPE_ALERTS = Codec(ScopeAlerts)
