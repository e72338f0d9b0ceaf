"""Keeps batches and rebalances apart: a recovery never runs under a batch still writing state.

Faust calls the revoke and assign handlers while agents may be in the middle of a batch
(awaiting the broker). If a recovery replaced a step's state then, the batch would go on
writing into the new state what it applied to the old one, or nothing at all, while its
offsets are committed. The gate makes every batch and every rebalance take the steps'
locks, so each happens whole, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any


class StepGate:
    """`ready` between the end of a recovery and the next revoke; one lock per worker step."""

    def __init__(self, steps: Iterable[str]) -> None:
        self.ready = asyncio.Event()
        self.locks = {step: asyncio.Lock() for step in steps}
        # Partitions this worker owns now: a batch taken before a rebalance may still hold
        # records of partitions that moved to another worker, which are not ours to apply.
        self.owned: set[Any] = set()

    @contextlib.asynccontextmanager
    async def turn(self, step: str) -> AsyncIterator[None]:
        """The step's lock, taken only while ready (never between a revoke and the recovery)."""
        lock = self.locks[step]
        while True:
            await self.ready.wait()
            await lock.acquire()
            if self.ready.is_set():
                break
            lock.release()
        try:
            yield
        finally:
            lock.release()

    @contextlib.asynccontextmanager
    async def rebalancing(self) -> AsyncIterator[None]:
        """Not ready, and every step idle, for as long as the block runs."""
        self.ready.clear()
        async with contextlib.AsyncExitStack() as stack:
            for lock in self.locks.values():  # always in the same order
                await stack.enter_async_context(lock)
            yield

    def owned_records(self, records: Iterable[Any]) -> list[Any]:
        """The Kafka records of partitions owned now (a TP equals its (topic, partition) tuple)."""
        owned = self.owned
        return [record for record in records if (record.topic, record.partition) in owned]
