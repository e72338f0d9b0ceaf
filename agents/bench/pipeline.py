"""(b) The full pipeline: worker start → every event applied, every topic at lag 0, every output flushed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.bench.checks import Accounting, BenchFailure, accounting, check
from agents.bench.kafka_io import group_lag
from agents.bench.workers import WorkerGroup
from streams.settings import Settings
from streams.topics import internal_topic_names

POLL_S = 0.25
PROGRESS_EVERY_S = 10.0
STALL_S = 300.0  # no progress at all for this long: the run is stuck, not slow


@dataclass(frozen=True)
class PipelineResult:
    events: int
    workers: int
    seconds_from_start: float  # first worker process started → caught up
    seconds_from_first: float | None  # first /status with events_in > 0 → caught up
    seconds_to_ready: float | None  # start → /ready
    counted: Accounting
    records_published: int

    @property
    def rate(self) -> float:
        """Events/s from the worker's start: what a user waits for, start-up included."""
        return self.events / self.seconds_from_start

    @property
    def rate_from_first(self) -> float | None:
        if not self.seconds_from_first:
            return None
        return self.events / self.seconds_from_first


def caught_up(statuses: list[dict[str, Any]], expected: int) -> bool:
    """Every worker answered, together they read every event, and none has anything left."""
    if not statuses or sum(s.get("events_in", 0) for s in statuses) < expected:
        return False
    return all(
        s.get("ready") and s.get("lag") and not any(s["lag"].values())
        and not s.get("unpublished") and not s.get("waiting_for_inputs")
        for s in statuses
    )


def _backlog_left(statuses: list[dict[str, Any]]) -> tuple[float, float]:
    """(total lag, total unpublished): moves while a worker works through a long flush."""
    return (sum(sum(s.get("lag", {}).values()) for s in statuses),
            sum(s.get("unpublished", 0) for s in statuses))


def _totals(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("events_in", "events_applied", "events_rejected", "duplicates", "records_published")
    return {key: sum(s.get(key, 0) for s in statuses) for key in keys}


async def measure_pipeline(
    group: WorkerGroup, settings: Settings, *, expected: int, expected_duplicates: int | None,
    workers: int = 1, settle_s: float | None = None, stall_s: float = STALL_S,
    progress: Callable[[str], None] = print,
) -> PipelineResult:
    """Start `workers` processes on the backlog and wait until it is all processed and published.

    Caught up means: /status of every worker says lag 0 on every topic it reads and nothing
    unpublished, the group's committed offsets (asked of the broker, not the worker) equal the
    end of the inputs and the internal topics, and nothing changes for `settle_s` (longer
    than a flush and a lag measurement), so a flush still writing when we looked is seen.
    The finish time is the first look of that quiet streak. A slow run is waited for; one
    where nothing moves (events read, records published, lag, unpublished) for `stall_s` fails.
    """
    settle_s = settle_s if settle_s is not None else float(group.env.get("KPI_FLUSH_INTERVAL_S", 1.0)) + 2.0
    entity_events, cells = internal_topic_names(settings)
    watched = [settings.topic_crm, settings.topic_billing, entity_events, cells]
    began = time.monotonic()
    for _ in range(workers):
        group.start()
    first: float | None = None
    ready: float | None = None
    candidate: tuple[float, dict[str, Any]] | None = None
    next_progress = began + PROGRESS_EVERY_S
    seen: tuple[Any, ...] = ()
    moved = began
    while True:
        now = time.monotonic()
        group.check_alive()
        statuses = await asyncio.gather(*(w.status() for w in group.processes))
        answered = [s for s in statuses if s is not None]
        totals = _totals(answered)
        state = (tuple(sorted(totals.items())), _backlog_left(answered))
        if state != seen:
            seen, moved = state, now
        elif now - moved > stall_s:
            raise BenchFailure(f"no progress for {stall_s:.0f} s; last lines of the first worker:\n"
                               f"{group.processes[0].tail()}")
        if ready is None and len(answered) == workers and all(s.get("ready") for s in answered):
            ready = now
        if first is None and totals["events_in"] > 0:
            first = now
        if now >= next_progress:
            lag_left, unpublished = _backlog_left(answered)
            progress(f"  {group.label}: {int(totals['events_in'])}/{expected} events read, "
                     f"{int(lag_left)} records behind, {int(unpublished)} changes unpublished, "
                     f"{int(totals['records_published'])} KPI records published, {now - began:.0f} s")
            next_progress = now + PROGRESS_EVERY_S
        if len(answered) == workers and caught_up(answered, expected):
            if candidate is None or candidate[1] != totals:
                lag = await group_lag(settings, group.app_id, watched)
                candidate = None if any(lag.values()) else (now, totals)
            elif now - candidate[0] >= settle_s:
                break
        else:
            candidate = None
        await asyncio.sleep(POLL_S)
    assert candidate is not None  # the loop leaves only through a settled candidate
    finished, totals = candidate
    held = sum(await asyncio.gather(*(w.held() for w in group.processes)))
    counted = accounting(totals, held)
    check(counted, expected, expected_duplicates)
    return PipelineResult(
        events=expected, workers=workers, seconds_from_start=finished - began,
        seconds_from_first=(finished - first) if first is not None else None,
        seconds_to_ready=(ready - began) if ready is not None else None,
        counted=counted, records_published=int(totals["records_published"]),
    )
