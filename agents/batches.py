"""What each worker step does with one batch of records, and in which order its outputs leave.

The agents in `agents/app.py` only iterate and call these; the order of sends and flushes
is what makes a crash lose nothing, so it lives here, where the crash tests drive it
without a broker (tests/unit/agents/test_crash_protocol.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agents.bundles import bundle, bundle_placed, partition_for, unbundle
from agents.dead_letter import Rejection
from agents.edge import Edge
from agents.entities import EntityStep
from agents.rollup_step import RollupStep
from kpi_state.codec import PROGRESS_KEY


class Output(Protocol):
    """The producer the steps write through (exporters.kafka_out.KafkaOut)."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, *,
        partition: int | None = None, headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Any: ...

    async def flush(self) -> None: ...


@dataclass(frozen=True)
class StepTopics:
    dlq: str
    cells: str
    entity_state: str
    rollup_state: str
    entity_events: str = "entity-events"
    stream_time_state: str = "stream-time-state"
    partitions: int = 4  # of the internal topics (entity events, cells, state)


async def dead_letter(out: Output, topic: str, rejections: list[Rejection]) -> None:
    for rejection in rejections:
        await out.send(topic, rejection.key, rejection.value, headers=rejection.headers)


async def edge_batch(edge: Edge, records: list[Any], out: Output, topics: StepTopics, wall_now: float) -> None:
    """Check input records; dead letters, then the events bundled by entity partition, each
    partition's bundle ending with the input partitions' new stream times (so an entity
    partition none of their events went to still hears how far they are), then those stream
    times for the edge's own recovery, all on the broker before the batch counts as done."""
    forwards, rejections = edge.process(records, wall_now)
    await dead_letter(out, topics.dlq, rejections)
    changed = edge.clock.take_changed()
    await send_bundles(out, topics.entity_events, bundle_placed(forwarded_items(edge, forwards, changed, topics.partitions)))
    for name, newest in changed.items():
        await out.send(
            topics.stream_time_state, name.encode(), repr(newest).encode(),
            partition=int(name.rsplit("|", 1)[1]),
        )
    await out.flush()


def forwarded_items(
    edge: Edge, forwards: list[tuple[bytes, bytes]], changed: dict[str, float], partitions: int,
) -> list[tuple[int, bytes, bytes]]:
    """(entity partition, key, value): each event on its entity's partition, then a Progress
    item on every partition, after the events it vouches for."""
    items = [(partition_for(key, partitions), key, value) for key, value in forwards]
    progress = edge.progress(changed)
    if progress is not None:
        items += [(partition, PROGRESS_KEY, progress) for partition in range(partitions)]
    return items


async def send_bundles(out: Output, topic: str, bundles: list[tuple[int, bytes]]) -> None:
    for partition, value in bundles:
        await out.send(topic, None, value, partition=partition)


async def send_placed(out: Output, topic: str, items: list[tuple[int, bytes, bytes]]) -> None:
    """(partition, key, value) items to `topic`, one bundle per partition."""
    await send_bundles(out, topic, bundle_placed(items))


async def entity_batch(
    entities: EntityStep, records: list[Any], out: Output, topics: StepTopics, wall_now: float | None = None,
) -> None:
    """Apply a batch of entity events; cells leave before the state that produced them.

    The rollup only learns that a cell emptied (an opportunity left the open pipeline, an
    invoice stopped being overdue) from an explicit empty cell. If the entity state were
    persisted first and the worker died before the cells left, the recovered state would
    no longer hold what the rollup still counts, and nothing would ever clear it. Flushing
    the cells first means a recovered state is never ahead of what the rollup was told; when
    it is behind, the records after it are re-read and bring both to the same point.
    """
    await dead_letter(out, topics.dlq, entities.process(unbundle(records), wall_now))
    await send_cells(entities, out, topics)
    await out.flush()
    for partition, key, value in entities.dirty_records():
        await out.send(topics.entity_state, key, value, partition=partition)
    await out.flush()


async def send_cells(entities: EntityStep, out: Output, topics: StepTopics) -> None:
    """Every changed day cell, absolute, keyed by scope (the caller flushes)."""
    await send_bundles(out, topics.cells, bundle(entities.cell_messages(), topics.partitions))


async def announce_recovered(entities: EntityStep, out: Output, topics: StepTopics) -> None:
    """After a recovery, every cell of the recovered entity state, absolute.

    The rollup may hold cells from after that state (sent, then the worker died before
    the state was written); the records replayed from the committed offsets bring both
    forward again. Without this, a worker whose input is already consumed would never
    send the cells it rebuilt.
    """
    await send_cells(entities, out, topics)
    await out.flush()


async def rebuild_cells(entities: EntityStep, out: Output, topics: StepTopics) -> None:
    """Re-derive and send every cell after the rep → team → region directory changed."""
    entities.rebuild()
    await send_cells(entities, out, topics)
    await out.flush()


async def rollup_batch(rollup: RollupStep, records: list[Any], out: Output, topics: StepTopics) -> None:
    """Apply absolute cells and persist what each (scope, day) now holds, before the commit."""
    for partition, key, value in rollup.process(unbundle(records)):
        await out.send(topics.rollup_state, key, value, partition=partition)
    await out.flush()
