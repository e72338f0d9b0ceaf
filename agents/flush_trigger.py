"""When the output flush runs: on the timer's tick, and as soon as a backlog's last batch is done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Protocol

from agents.pacing import FlushPacing


class StepsConsumer(Protocol):
    """What the trigger asks of the worker's consumer (agents.delivery.BatchConsumer)."""

    def backlog(self, topics: set[str], produced: Mapping[tuple[str, int], int] | None = None) -> int: ...

    def busy(self) -> bool: ...

    def owns_every_partition(self, topics: Collection[str]) -> bool: ...

    def knows_every_end(self, topics: set[str]) -> bool: ...


class FlushTrigger:
    """Asks `pacing` whether a flush is due, and runs `flush` then; never two at once.

    While catching up, every step batch wakes the trigger: once nothing waits, the backlog
    is published at once instead of a tick and an idle second later. That "nothing waits"
    is exact only when the worker itself wrote everything its internal topics hold, which
    is the case when it owns every input and entity-events partition (the edges and the
    entity steps then all run here): the producer's acknowledged offsets tell where those
    topics end before a fetch does.
    """

    # `upstream`: the topics whose every partition, owned here, makes this worker the only
    # writer of its internal topics (the inputs and entity-events).
    def __init__(
        self, pacing: FlushPacing, consumer: Callable[[], StepsConsumer], *,
        routed: set[str], upstream: Collection[str],
        produced: Mapping[tuple[str, int], int], flush: Callable[[], Awaitable[Any]],
        ready: Callable[[], bool],
    ) -> None:
        self.pacing = pacing
        self.consumer = consumer
        self.routed = routed
        self.upstream = upstream
        self.produced = produced
        self.flush = flush
        self.ready = ready
        self._drained = asyncio.Event()
        self._flushing = asyncio.Lock()

    def batch_done(self) -> None:
        self.pacing.batch_done()
        if self.pacing.catching_up:
            self._drained.set()  # perhaps the backlog's last batch: look at once

    async def tick(self) -> bool:
        """Flush if due; True if it ran."""
        if self._flushing.locked() or not self.ready():
            return False
        consumer = self.consumer()
        exact = consumer.owns_every_partition(self.upstream) and consumer.knows_every_end(self.routed)
        if not self.pacing.due(consumer.backlog(self.routed, self.produced), consumer.busy(), exact):
            return False
        async with self._flushing:
            self.pacing.start()
            await self.flush()
            self.pacing.done()
            # Batches done during the flush woke the watcher for a look the flush just took.
            self._drained.clear()
        return True

    async def watch(self, stopping: Callable[[], bool]) -> None:
        """Tick whenever a batch may have ended a backlog (a task of the worker)."""
        while not stopping():
            await self._drained.wait()
            self._drained.clear()
            await self.tick()
