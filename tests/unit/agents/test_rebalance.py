"""StepGate: a rebalance waits for the batch in flight, and batches wait for the recovery."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agents.rebalance import StepGate


@dataclass(frozen=True)
class _Record:
    """What the gate reads of an aiokafka ConsumerRecord."""

    topic: str
    partition: int
    offset: int


async def test_a_rebalance_waits_for_the_batch_in_flight_to_finish() -> None:
    gate = StepGate(("entities",))
    gate.ready.set()
    log: list[str] = []
    broker_acks = asyncio.Event()

    async def batch() -> None:
        async with gate.turn("entities"):
            log.append("batch applied")
            await broker_acks.wait()  # the batch waits for its state to reach the broker
            log.append("batch state persisted")

    async def rebalance() -> None:
        async with gate.rebalancing():
            log.append("recovered")

    running = asyncio.create_task(batch())
    await asyncio.sleep(0)
    moving = asyncio.create_task(rebalance())
    await asyncio.sleep(0)
    assert not gate.ready.is_set()  # no new batch may start now
    assert log == ["batch applied"]
    broker_acks.set()
    await asyncio.gather(running, moving)
    assert log == ["batch applied", "batch state persisted", "recovered"]


async def test_a_batch_waits_until_the_recovery_has_finished() -> None:
    gate = StepGate(("rollup",))
    log: list[str] = []

    async def batch() -> None:
        async with gate.turn("rollup"):
            log.append("batch")

    waiting = asyncio.create_task(batch())
    async with gate.rebalancing():
        await asyncio.sleep(0)
        log.append("recovered")
    await asyncio.sleep(0)
    assert log == ["recovered"]  # not ready yet: the assignment handler sets it
    gate.ready.set()
    await waiting
    assert log == ["recovered", "batch"]


async def test_a_batch_taken_before_the_revoke_keeps_only_partitions_still_owned() -> None:
    from faust.types import TP

    gate = StepGate(("edge",))
    gate.owned = {TP("crm", 0), TP("crm", 1)}
    records = [_Record("crm", 0, 0), _Record("crm", 1, 0), _Record("crm", 0, 1)]
    async with gate.rebalancing():
        gate.owned -= {TP("crm", 1)}
    assert [(r.partition, r.offset) for r in gate.owned_records(records)] == [(0, 0), (0, 1)]
