"""After every assignment, each worker step takes back the state of exactly the partitions it now owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from agents.batches import StepTopics, announce_recovered
from agents.runtime import Runtime
from streams.settings import Settings
from streams.state_log import read_state

log = logging.getLogger(__name__)

Recover = Callable[[list[tuple[bytes, bytes]], set[int]], None]


class Recovery:
    """The assign and revoke handlers: every step idle while its state is replaced (see StepGate)."""

    def __init__(self, settings: Settings, runtime: Runtime, topics: StepTopics, alerting: Any) -> None:
        self.settings = settings
        self.runtime = runtime
        self.topics = topics
        self.alerting = alerting
        # step: (the input topic whose partitions it owns, its state topic, how it takes state back)
        self.steps: dict[str, tuple[str, str, Recover]] = {
            "stream-time": (settings.topic_crm, topics.stream_time_state, self._recover_clock),
            "entities": (topics.entity_events, topics.entity_state, runtime.entities.recover),
            "rollup": (topics.cells, topics.rollup_state, runtime.rollup.recover),
        }

    @property
    def state_topics(self) -> list[str]:
        return [state for _, state, _ in self.steps.values()]

    async def on_assigned(self, assigned: Any) -> None:
        runtime = self.runtime
        runtime.metrics.rebalances.inc()
        gate = runtime.gate
        async with gate.rebalancing():
            gate.owned = set(assigned or ())
            owned_by_step = {
                step: {tp.partition for tp in gate.owned if tp.topic == source}
                for step, (source, _, _) in self.steps.items()
            }
            # The state topics are read side by side (each read is mostly a client's start,
            # fetch waits and stop), then taken back in the steps' order.
            states = await asyncio.gather(*(
                read_state(self.settings, state_topic, owned_by_step[step])
                for step, (_, state_topic, _) in self.steps.items()
            ))
            for (step, (_, _, recover)), items in zip(self.steps.items(), states):
                owned = owned_by_step[step]
                recover(items, owned)
                log.info("%s recovered: %d keys on partitions %s", step, len(items), sorted(owned))
            # Recovered engines wait for silent inputs before their first heartbeat leaves.
            runtime.entities.expect_inputs(time.time())
            await announce_recovered(runtime.entities, runtime.out, self.topics)
            await self.alerting.recovered()
        gate.ready.set()

    async def on_revoked(self, revoked: Any) -> None:
        # Batches in flight finish and persist their state before the partitions move on,
        # so the next owner recovers what they applied.
        gate = self.runtime.gate
        async with gate.rebalancing():
            gate.owned -= set(revoked or ())

    def _recover_clock(self, items: list[tuple[bytes, bytes]], active: set[int]) -> None:
        newest = self.runtime.clock.newest
        newest.clear()
        for key, raw in items:
            name = key.decode()
            if int(name.rsplit("|", 1)[1]) in active:
                newest[name] = float(raw)
