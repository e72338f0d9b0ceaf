"""Stream time per input partition, and the lateness and clock-skew limits of contract §3."""

from __future__ import annotations

from kpi_state.errors import InvalidEvent


class StreamClock:
    """The newest event time seen on each input partition (as in Kafka Streams).

    Lateness is judged against the event's own partition: partitions are consumed at
    different speeds, so one global maximum would reject good events.
    """

    def __init__(self, lateness_s: float, future_skew_s: float) -> None:
        self.lateness_s = lateness_s
        self.future_skew_s = future_skew_s
        self.newest: dict[str, float] = {}
        self.changed: set[str] = set()

    def check(self, partition_key: str, ts: float, wall_now: float, *, late_allowed: bool = False) -> None:
        """Raise `future_timestamp` or `too_late`; otherwise advance that partition's time.

        `late_allowed` (the backfill topic) skips the lateness check: history is old by
        nature, and a re-import of it must meet its duplicates, not a lateness limit.
        """
        if ts > wall_now + self.future_skew_s:
            raise InvalidEvent(
                "future_timestamp",
                f"occurred_at is more than {self.future_skew_s:g} s ahead of the clock",
            )
        newest = self.newest.get(partition_key)
        if not late_allowed and newest is not None and ts < newest - self.lateness_s:
            raise InvalidEvent(
                "too_late",
                f"occurred_at is more than {self.lateness_s:g} s behind this partition's stream time",
            )
        if newest is None or ts > newest:
            self.newest[partition_key] = ts
            self.changed.add(partition_key)

    def take_changed(self) -> dict[str, float]:
        changed = {key: self.newest[key] for key in self.changed}
        self.changed.clear()
        return changed
