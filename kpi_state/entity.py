"""One entity's persisted record: its state, the newest offset applied, and event ids seen."""

from __future__ import annotations

import msgspec

# What `admit` decides about an incoming event.
NEW = "new"
REPLAYED = "replayed"  # at or below the applied offset: re-read after a restart
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


class EntityRecord(msgspec.Struct):
    """The table value of one entity (a rep, an opportunity, a customer, a team's spend).

    Every event belongs to exactly one entity, so keeping the newest applied source
    offset in the same value as the state makes each changelog record self-contained:
    after a crash, events at or below `applied_offset` are known to be in `body`.
    """

    kind: str
    body: bytes = b""
    applied_offset: int = -1
    newest_ts: float = 0.0
    # event_id -> (content fingerprint, event time), kept for the dedup horizon.
    seen: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)

    def admit(self, offset: int, event_id: str, fingerprint: int) -> str:
        if offset <= self.applied_offset:
            return REPLAYED
        known = self.seen.get(event_id)
        if known is None:
            return NEW
        return DUPLICATE if known[0] == fingerprint else CONFLICTING

    def mark(self, offset: int, event_id: str | None, fingerprint: int, ts: float, horizon_s: float) -> None:
        """Remember that `offset` was handled (and the event applied when `event_id` is given)."""
        self.applied_offset = offset
        if event_id is None:
            return
        self.seen[event_id] = (fingerprint, ts)
        if ts > self.newest_ts:
            self.newest_ts = ts
            self._forget_before(ts - horizon_s, horizon_s / 8)

    def forget_before(self, cutoff: float) -> None:
        """Forget the ids of events older than `cutoff`."""
        if self.seen:
            self.seen = {eid: entry for eid, entry in self.seen.items() if entry[1] >= cutoff}

    def _forget_before(self, cutoff: float, slack: float) -> None:
        # Ids arrive roughly in event-time order, so the first one inserted is a cheap
        # stand-in for the oldest. Pruning only once it is `slack` past the horizon makes
        # each pass drop many ids (ids are kept at least the horizon, never less); pruning
        # as soon as it passed rebuilt the dict for every event of a busy rep.
        seen = self.seen
        if seen and next(iter(seen.values()))[1] < cutoff - slack:
            self.seen = {eid: entry for eid, entry in seen.items() if entry[1] >= cutoff}
