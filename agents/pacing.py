"""When the output flush may run again: under load it costs more, so it is spaced to a fifth of the time."""

from __future__ import annotations

import time
from collections.abc import Callable


class FlushPacing:
    """A flush that took `spent` seconds is followed by at least `4 * spent` seconds of batches.

    A replay of history changes thousands of KPI records between two flushes; flushing them
    on every tick would leave the steps a small share of the core. Spacing flushes this way
    coalesces more changes into each (a key changed by many events is published once), while
    live traffic, which leaves no batch waiting, is flushed on every tick.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._next = 0.0
        self._started = 0.0
        self._batches = 0  # step batches since the last flush ended

    def due(self) -> bool:
        # Spacing only makes room for batches: when none ran since the last flush ended
        # (a timer tick ago at least), the steps are idle and what is left goes out now.
        return self._batches == 0 or self.clock() >= self._next

    def batch_done(self) -> None:
        self._batches += 1

    def start(self) -> None:
        self._started = self.clock()

    def done(self) -> None:
        now = self.clock()
        self._next = now + 4 * (now - self._started)
        self._batches = 0
