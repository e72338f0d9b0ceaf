"""When the output flush may run again: under load it costs more, so it gets at most half of the time."""

from __future__ import annotations

import time
from collections.abc import Callable


class FlushPacing:
    """A flush that took `spent` seconds is followed by at least `spent` seconds of batches.

    A replay of history changes thousands of KPI records between two flushes; flushing them
    on every tick would leave the steps a small share of the core. Spacing flushes this way
    coalesces more changes into each (a key changed by many events is published once), while
    live traffic, which leaves no batch waiting, is flushed on every tick. Under a steady
    load the spacing is the latency of a changed KPI: four times the flush's length (an
    earlier choice) doubled the p99 to `kpi.values` at 4,500 events/s (docs/BENCHMARKS.md).

    Once more than `backlog_limit` records wait for the steps, the worker is catching up
    until its next flush, and flushes are at least `catch_up_s` apart: a current period's
    records published in the middle of a backlog would be replaced by the next flush anyway,
    and each such flush publishes every KPI of every scope again (Kafka Streams' record
    caches flush at the commit interval for the same reason). The end of a backlog needs no
    wait: steps idle (none busy, no batch done for `idle_s`, no record waiting) publish at
    once. Steps waiting a second for a fetch in the middle of a backlog are not idle: a
    flush then would publish everything twice. When the backlog is known exactly (`exact`:
    this worker wrote everything its internal topics hold, so their ends are known without
    waiting for a fetch), a drained backlog is published at once, without the idle second;
    live traffic keeps the spacing above.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, catch_up_s: float = 0.0,
                 backlog_limit: int = 0, idle_s: float = 1.0) -> None:
        self.clock = clock
        self.catch_up_s = catch_up_s
        self.backlog_limit = backlog_limit
        self.idle_s = idle_s
        self._next = 0.0
        self._started = 0.0
        self._ended: float | None = None
        self._batches = 0  # step batches since the last flush ended
        self._last_batch = 0.0
        # The backlog is measured in records of the steps' topics, and the internal ones carry
        # bundles of many events: once seen, catching up lasts until the next flush.
        self._catching_up = False

    def due(self, backlog: int = 0, busy: bool = False, exact: bool = False) -> bool:
        # Spacing only makes room for batches: when none ran since the last flush ended
        # (a timer tick ago at least), the steps are idle and what is left goes out now.
        if self._batches == 0:
            return True
        now = self.clock()
        if exact and self._catching_up and not busy and backlog == 0:
            return True  # the end of a backlog, known without waiting (live traffic keeps its pacing)
        # Any record waiting means work is left: the internal topics carry bundles of many
        # events, so a few records there can still be a long way from the end.
        if not busy and backlog == 0 and now - self._last_batch >= self.idle_s:
            return True
        if backlog > self.backlog_limit:
            self._catching_up = True
        if self._catching_up and self._ended is not None and now < self._ended + self.catch_up_s:
            return False
        return now >= self._next

    @property
    def catching_up(self) -> bool:
        """A backlog was seen since the last flush: its end is worth watching for."""
        return self._catching_up

    def batch_done(self) -> None:
        self._batches += 1
        self._last_batch = self.clock()

    def start(self) -> None:
        self._started = self.clock()

    def done(self) -> None:
        now = self.clock()
        self._next = now + (now - self._started)
        self._ended = now
        self._batches = 0
        self._catching_up = False
