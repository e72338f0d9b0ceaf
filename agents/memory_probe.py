"""Resident bytes per tracked opportunity and per rep, through the entity step's real pure path."""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import random
import sys
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from agents.entities import EntityStep
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.codec import FORWARDED, Forwarded
from kpi_state.directory import RepDirectory
from kpi_state.routing import entity_key
from streams.currency import Rates
from streams.decode import Decoder
from streams.settings import DEFAULT_STAGES

DAY = 86400
START = int(datetime(2026, 1, 5, tzinfo=timezone.utc).timestamp())
CRM = "crm.events"
SOURCES = 4  # input partitions of crm.events (unkeyed connectors spread every entity)
# Records per entity-step batch. A worker's are larger (about 14,000 events on the bench's
# backlog, docs/BENCHMARKS.md), but the probe measures resident growth per entity, and a
# larger batch leaves freed memory behind that the next phase reuses: at 5,000, the reps'
# phase grew by 4 KiB for 500 reps, and the opportunities' figure rose by 7 to 15 %.
BATCH = 500
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Message:
    """What EntityStep reads of a consumed entity-events record."""

    partition: int
    offset: int
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Plan:
    """One opportunity's lifecycle, derived from the seed and its index alone."""

    rep: str
    moves: tuple[int, ...]  # stage indexes reached by moves, ascending
    gaps: tuple[int, ...]  # seconds from the previous step, one per move and the close
    close: str | None  # "won", "lost", or None while still open
    amount: int


def rep_id(index: int) -> str:
    return f"r-{index:05d}"


def plan_of(seed: int, index: int, reps: int) -> Plan:
    rng = random.Random(seed * 1_000_003 + index)
    top = rng.randrange(1, len(DEFAULT_STAGES))
    moves = tuple(sorted(rng.sample(range(1, top + 1), rng.randint(1, min(3, top)))))
    roll = rng.random()
    close = "won" if roll < 0.35 else "lost" if roll < 0.85 else None
    steps = len(moves) + (close is not None)
    gaps = tuple(rng.randrange(3600, 20 * DAY) for _ in range(steps))
    return Plan(rep_id(rng.randrange(reps)), moves, gaps, close, rng.randrange(1000, 90000))


def _uuid(seed: int, *parts: object) -> str:
    # Realistic ids (CRMs send UUIDs), reproducible from the seed.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}|" + "|".join(map(str, parts))))


def _envelope(event_id: str, kind: str, ts: int, data: dict[str, Any]) -> bytes:
    when = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _encoder.encode({"event_id": event_id, "type": kind, "occurred_at": when,
                            "source": "crm", "schema_version": 1, "data": data})


def _step_event(seed: int, index: int, step: int, ts: int, plan: Plan) -> bytes:
    opp = f"o-{index:07d}"
    event_id = _uuid(seed, "opp", index, step)
    if step == 0:
        return _envelope(event_id, "opportunity.created", ts, {
            "opportunity_id": opp, "rep_id": plan.rep, "stage": DEFAULT_STAGES[0],
            "amount": f"{plan.amount}.00", "currency": "EUR"})
    if step <= len(plan.moves):
        return _envelope(event_id, "opportunity.stage_changed", ts, {
            "opportunity_id": opp, "rep_id": plan.rep, "to_stage": DEFAULT_STAGES[plan.moves[step - 1]]})
    if plan.close == "won":
        return _envelope(event_id, "opportunity.won", ts, {
            "opportunity_id": opp, "rep_id": plan.rep, "amount": f"{plan.amount}.00", "currency": "EUR"})
    return _envelope(event_id, "opportunity.lost", ts, {"opportunity_id": opp, "rep_id": plan.rep})


def opportunity_events(seed: int, opportunities: int, reps: int, days: int) -> Iterator[tuple[int, bytes]]:
    """(source partition, record) of every opportunity event, in event-time order.

    Creations are spread evenly over `days`; later steps wait in a heap of single ints
    (time, index and step packed), so the generator's own footprint stays small.
    """
    if opportunities > 0x1FFFFF:
        raise ValueError("at most 2,097,151 opportunities (21 bits of the packed heap entries)")
    spacing = days * DAY / max(opportunities, 1)
    pending: list[int] = []

    def emit(index: int, step: int, ts: int) -> tuple[int, bytes]:
        plan = plan_of(seed, index, reps)
        if step < len(plan.gaps):  # gaps[step] leads to the next step
            heapq.heappush(pending, (ts + plan.gaps[step]) << 24 | index << 3 | (step + 1))
        return index % SOURCES, _step_event(seed, index, step, ts, plan)

    for index in range(opportunities):
        created = START + int(index * spacing)
        while pending and pending[0] >> 24 <= created:
            packed = heapq.heappop(pending)
            yield emit((packed >> 3) & 0x1FFFFF, packed & 7, packed >> 24)
        yield emit(index, 0, created)
    while pending:
        packed = heapq.heappop(pending)
        yield emit((packed >> 3) & 0x1FFFFF, packed & 7, packed >> 24)


def activity_events(seed: int, reps: int, days: int, per_day: int) -> Iterator[tuple[int, bytes]]:
    """Calls and emails of every rep, `per_day` a day each, in event-time order."""
    for day in range(days):
        for slot in range(per_day):
            ts = START + day * DAY + 8 * 3600 + slot * (9 * 3600 // max(per_day, 1))
            for rep in range(reps):
                kind = "call.logged" if slot % 2 == 0 else "email.sent"
                data: dict[str, Any] = {"rep_id": rep_id(rep), "contact_id": f"c-{rep}-{slot}"}
                if kind == "call.logged":
                    data["duration_s"] = 60 + slot
                yield rep % SOURCES, _envelope(_uuid(seed, "act", rep, day, slot), kind, ts, data)


def directory_of(reps: int) -> RepDirectory:
    directory = RepDirectory()
    for index in range(reps):
        directory.place(rep_id(index), f"t-{index % 25:02d}", f"eu-{index % 4}")
    return directory


def entity_step_of(reps: int) -> EntityStep:
    return EntityStep(
        decoder=Decoder(stages=DEFAULT_STAGES, rates=Rates("EUR")), directory=directory_of(reps),
        metrics=PipelineMetrics(CollectorRegistry()), tz="UTC", stages=DEFAULT_STAGES,
        dedup_horizon_s=8 * DAY, lateness_s=7 * DAY)


class Feeder:
    """Forwards records to the entity step in worker-sized batches, taking its writes as the worker does."""

    def __init__(self, step: EntityStep, partitions: int, batch: int = BATCH) -> None:
        self.step = step
        self.batch_size = batch
        self.partitions = partitions
        self.offsets = [0] * partitions
        self.inputs = [0] * SOURCES
        self.batch: list[Message] = []
        self.events = 0
        self.rejected = 0

    def send(self, source: int, value: bytes) -> None:
        # Forwarded as the edge does: decoded once, keyed by its entity, the event carried.
        event = self.step.decoder.decode(value)
        entity = entity_key(event)
        partition = zlib.crc32(entity) % self.partitions
        forwarded = Forwarded(None, value, [], CRM, source, self.inputs[source], None, event)
        self.inputs[source] += 1
        self.batch.append(Message(partition, self.offsets[partition], entity, FORWARDED.encode(forwarded)))
        self.offsets[partition] += 1
        self.events += 1
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.rejected += len(self.step.process(self.batch))
            self.batch = []
        self.step.cell_messages()
        self.step.dirty_records()


def resident_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (pages × page size)."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tracked(step: EntityStep, prefix: bytes) -> int:
    return sum(1 for engine in step.engines.values() for keys in (engine.states, engine.cold)
               for key in keys if key.startswith(prefix))


def probe(*, opportunities: int, reps: int, days: int = 180, activity_per_day: int = 4,
          partitions: int = 4, seed: int = 7, batch: int = BATCH) -> dict[str, Any]:
    """Load opportunities, then rep activity; resident growth of each, per entity loaded."""
    step = entity_step_of(reps)
    feeder = Feeder(step, partitions, batch)
    before = resident_bytes()
    for source, value in opportunity_events(seed, opportunities, reps, days):
        feeder.send(source, value)
    feeder.flush()
    after_opportunities = resident_bytes()
    opportunity_events_sent = feeder.events
    for source, value in activity_events(seed, reps, days, activity_per_day):
        feeder.send(source, value)
    feeder.flush()
    after = resident_bytes()
    loaded_opportunities = tracked(step, b"opp:")
    loaded_reps = tracked(step, b"rep:")
    opp_growth, rep_growth = after_opportunities - before, after - after_opportunities
    return {
        "opportunities": loaded_opportunities,
        "reps": loaded_reps,
        "opportunity_events": opportunity_events_sent,
        "activity_events": feeder.events - opportunity_events_sent,
        "rejected": feeder.rejected,
        "held": step.held(),
        "rss_before_bytes": before,
        "rss_bytes": after,
        "opportunity_growth_bytes": opp_growth,
        "rep_growth_bytes": rep_growth,
        "bytes_per_opportunity": round(opp_growth / loaded_opportunities, 1) if loaded_opportunities else None,
        "bytes_per_rep": round(rep_growth / loaded_reps, 1) if loaded_reps else None,
        "days": days,
        "seed": seed,
        "batch": batch,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.memory_probe", description=__doc__)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--days", type=int, default=180, help="days the creations are spread over")
    parser.add_argument("--activity-per-day", type=int, default=4, help="calls and emails per rep and day")
    parser.add_argument("--partitions", type=int, default=4, help="entity partitions (one engine each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=BATCH, help="records per entity-step batch")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = probe(opportunities=args.opportunities, reps=args.reps, days=args.days,
                   activity_per_day=args.activity_per_day, partitions=args.partitions, seed=args.seed,
                   batch=args.batch)
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
