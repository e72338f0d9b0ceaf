"""One entity's persisted record: its state, the newest input offsets applied, and event ids seen."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from kpi_state import id_digests

# What `admit` decides about an incoming event.
NEW = "new"
REPLAYED = "replayed"  # at or below the offset applied from its input partition: re-read after a restart
DUPLICATE = "duplicate"  # same event_id, same content: dropped silently
CONFLICTING = "conflicting_duplicate"  # same event_id, other content: dead-lettered
HELD = "held"  # waits on its entity for the event that makes it valid (not a DLQ reason)
ORPHANED = "orphaned"  # held until past the lateness horizon, never matched


class Withdrawn(msgspec.Struct, array_like=True, frozen=True):
    """An event that leaves its entity for the DLQ: its original record and why."""

    raw: bytes | None  # the forwarded record as it arrived (None if it was settled)
    reason: str
    ts: float


class Judged(msgspec.Struct, frozen=True):
    """What an entity made of a new event: its verdict (None when counted, HELD, or a DLQ
    reason) and the events it took out of the KPIs."""

    verdict: str | None
    withdrawn: list[Withdrawn] = msgspec.field(default_factory=list)


Knows = Callable[[str], bool] | None


class EntityRecord(msgspec.Struct, array_like=True):
    """The table value of one entity (a rep, an opportunity, a customer, a team's spend).

    Every event belongs to exactly one entity, so keeping the newest applied input offset
    in the same value as the state makes each changelog record self-contained: after a
    crash, events at or below the offset applied from their input partition are known to be
    in `body`. Offsets are the input record's (`origin` is its `topic|partition`), never
    an internal topic's: an event reaches its entity in the order of its input partition,
    the first time and again after an edge restarted, so the same basis holds for both.
    """

    kind: str
    body: bytes = b""
    applied_offset: int = -1  # of `applied_origin`, where most entities' events all come from
    newest_ts: float = 0.0
    # event_id -> (content fingerprint, event time), kept for the dedup horizon.
    seen: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)
    # Digests of the ids that left `seen` (see id_digests): a re-sent event is a duplicate
    # whatever its age. Two sorted runs, so that adding a few ids copies the small one only.
    past: bytes = b""
    recent: bytes = b""
    applied_origin: str = ""
    # origin -> newest offset applied, for the other input partitions an entity heard from
    # (a rep's activity, events produced without a key); None for most entities.
    other_origins: dict[str, int] | None = None

    def admit(self, origin: str, offset: int, event_id: str, fingerprint: int) -> str:
        if origin == self.applied_origin:
            if offset <= self.applied_offset:
                return REPLAYED
        elif self.other_origins is not None and offset <= self.other_origins.get(origin, -1):
            return REPLAYED
        known = self.seen.get(event_id)
        if known is None:
            if self.past or self.recent:
                key = id_digests.digest(event_id)
                if id_digests.contains(self.recent, key) or id_digests.contains(self.past, key):
                    return DUPLICATE
            return NEW
        return DUPLICATE if known[0] == fingerprint else CONFLICTING

    def mark(
        self, origin: str, offset: int, event_id: str | None, fingerprint: int, ts: float, horizon_s: float,
        knows: Knows = None,
    ) -> None:
        """Remember that `offset` of `origin` was handled (and the event applied when `event_id` is given).

        `knows` tells the ids the entity's state recognises by itself (an opportunity's
        events): those leave the dedup window without a digest."""
        self.note(origin, offset)
        if event_id is None:
            return
        self.seen[event_id] = (fingerprint, ts)
        if ts > self.newest_ts:
            self.newest_ts = ts
            self._forget_before(ts - horizon_s, horizon_s / 8, knows)

    def note(self, origin: str, offset: int) -> None:
        """Remember that `offset` of `origin` was handled."""
        if origin == self.applied_origin or self.applied_offset < 0:
            self.applied_origin, self.applied_offset = origin, offset
        elif self.other_origins is None:
            self.other_origins = {origin: offset}
        else:
            self.other_origins[origin] = offset

    def retire(self, ids: list[str], digests: list[bytes]) -> None:
        """Move `ids` (in `seen`) to the digests, `digests` being theirs (kpi_state.rep_days)."""
        seen = self.seen
        for event_id in ids:
            del seen[event_id]
        self._fold(digests)

    def forget_before(self, cutoff: float, knows: Knows = None) -> None:
        """Keep only digests of the ids of events older than `cutoff` (see `mark`)."""
        if self.seen:
            self._prune(cutoff, knows)

    def _forget_before(self, cutoff: float, slack: float, knows: Knows) -> None:
        # Ids arrive roughly in event-time order, so the first one inserted is a cheap
        # stand-in for the oldest. Pruning only once it is `slack` past the horizon makes
        # each pass drop many ids (ids are kept at least the horizon, never less); pruning
        # as soon as it passed rebuilt the dict for every event of a busy rep.
        seen = self.seen
        if seen and next(iter(seen.values()))[1] < cutoff - slack:
            self._prune(cutoff, knows)

    def _prune(self, cutoff: float, knows: Knows) -> None:
        gone = [eid for eid, entry in self.seen.items() if entry[1] < cutoff]
        if not gone:
            return
        self.seen = {eid: entry for eid, entry in self.seen.items() if entry[1] >= cutoff}
        if knows is not None:
            gone = [eid for eid in gone if not knows(eid)]
            if not gone:
                return
        self._fold(map(id_digests.digest, gone))

    def _fold(self, digests: Iterable[bytes]) -> None:
        self.recent = id_digests.merged(self.recent, digests)
        # Folded into the large run once the small one is an eighth of it: each digest is
        # copied a bounded number of times on average, however many an entity gathers.
        if len(self.recent) > len(self.past) // 8 + 64 * id_digests.SIZE:
            self.past, self.recent = id_digests.merged(self.past, id_digests.slots(self.recent)), b""
