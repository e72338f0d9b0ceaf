"""The steps' own CPU cost on the bench backlog, in process and without a broker: µs per event.

`kpi-pipeline bench` times the worker end to end, and on this machine two runs of the same
code differ by more than a change to one step buys. This runs the worker's own step objects
(agents.edge.Edge, agents.entities.EntityStep, agents.rollup_step.RollupStep and the view's
record building) over the same seeded backlog, in batches as the worker takes them, and
reports each step's thread CPU time, the best of a few rounds:

    python -m agents.bench.steps --events 200000 --rounds 3 [--json]

Only the broker is left out: records move between the steps as the bundles the worker
writes, so encoding and decoding are timed too; Kafka's and Redis' clients are not.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry

from agents.batches import forwarded_items
from agents.bench.backlog import build_backlog
from agents.bench.kafka_io import partition_of
from agents.bundles import bundle, bundle_placed, unbundle
from agents.edge import BILLING_TYPES, CRM_TYPES, Edge
from agents.entities import EntityStep
from agents.rollup_step import RollupStep
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.directory import RepDirectory
from kpi_state.kpi_view import ViewConfig
from kpi_state.records import encoded
from kpi_state.stream_clock import StreamClock
from streams.currency import Rates
from streams.decode import Decoder
from streams.settings import DEFAULT_STAGES

CRM, BILLING = "crm.events", "billing.events"
INPUT_PARTITIONS = 4  # per input topic, as the bench creates them
PARTITIONS = 4  # of the internal topics
DAY = 86400.0
PHASES = ("edge", "entities", "cells", "state", "rollup", "flush")


@dataclass
class Record:
    """The fields the steps read of a consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Any = None
    timestamp: int | None = None  # milliseconds, as aiokafka gives it


def arrival_order(backlog: Any) -> list[Record]:
    """Input records as the worker's fetches hand them over: round robin over partitions."""
    queues: dict[tuple[str, int], list[Record]] = {}
    for kind, topic in (("crm", CRM), ("billing", BILLING)):
        for index, (key, value) in enumerate(backlog.records[kind]):
            partition = partition_of(key, index, INPUT_PARTITIONS)  # as the bench loads them
            queue = queues.setdefault((topic, partition), [])
            queue.append(Record(topic, partition, len(queue), key, value))
    order: list[Record] = []
    position = 0
    while len(order) < sum(len(queue) for queue in queues.values()):
        order += [queue[position] for queue in queues.values() if position < len(queue)]
        position += 1
    return order


def one_round(backlog: Any, order: list[Record], batch: int, wall_now: float) -> tuple[Counter[str], dict[str, int]]:
    """Every record through fresh steps; (CPU seconds per phase, counts)."""
    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates("EUR"), max_event_bytes=64 * 1024)
    metrics = PipelineMetrics(CollectorRegistry())
    edge = Edge(decoder, StreamClock(7 * DAY, 300.0), metrics, {CRM: CRM_TYPES, BILLING: BILLING_TYPES})
    directory = RepDirectory()
    for rep in backlog.organisation.reps:
        directory.place(rep.rep_id, rep.team_id, rep.region_id)
    entities = EntityStep(decoder=decoder, directory=directory, metrics=metrics, tz="UTC",
                          stages=DEFAULT_STAGES, dedup_horizon_s=8 * DAY)
    inputs = frozenset(f"{topic}|{p}" for topic in (CRM, BILLING) for p in range(INPUT_PARTITIONS))
    entities.inputs_of = lambda: inputs
    rollup = RollupStep(ViewConfig(tz="UTC", stages=DEFAULT_STAGES, currency="EUR",
                                   customer_lifetime_days=Decimal(1095)))
    spent: Counter[str] = Counter()
    counts = {"events": len(order), "rejected": 0, "state_bytes": 0, "records": 0}
    clock = time.thread_time
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        began = clock()
        forwards, rejections = edge.process(chunk, wall_now)
        items = forwarded_items(edge, forwards, edge.clock.take_changed(), PARTITIONS)
        entity_events = [Record("entity-events", p, 0, None, v) for p, v in bundle_placed(items)]
        edge_done = clock()
        rejections += entities.process(unbundle(entity_events), wall_now)
        entities_done = clock()
        cells = [Record("cells", p, 0, None, v) for p, v in bundle(entities.cell_messages(), PARTITIONS)]
        cells_done = clock()
        counts["state_bytes"] += sum(len(value) for _, _, value in entities.dirty_records())
        state_done = clock()
        rollup.process(unbundle(cells))
        rollup_done = clock()
        spent["edge"] += edge_done - began
        spent["entities"] += entities_done - edge_done
        spent["cells"] += cells_done - entities_done
        spent["state"] += state_done - cells_done
        spent["rollup"] += rollup_done - state_done
        counts["rejected"] += len(rejections)
    began = clock()
    view = rollup.view
    for series in view.take_changed():  # one flush at the end, as a worker on a backlog does
        for record in view.changed_records(series, "1970-01-01T00:00:00Z"):
            record.key.encode()
            encoded(record)
            counts["records"] += 1
    spent["flush"] += clock() - began
    return spent, counts


def measure(events: int, reps: int, seed: int, rounds: int, batch: int) -> dict[str, Any]:
    backlog = build_backlog(events, reps, seed)
    order = arrival_order(backlog)
    wall_now = backlog.last_ts + 3600.0  # epoch seconds, an hour after the last event: nothing is from the future
    gc.freeze()  # as the worker does (agents.cli worker)
    gc.set_threshold(50_000, 20, 100)
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        spent, counts = one_round(backlog, order, batch, wall_now)
        for phase in PHASES:
            best[phase] = min(best.get(phase, float("inf")), spent[phase])
        gc.collect()
    total = sum(best.values())
    return {
        "events": events, "reps": reps, "seed": seed, "rounds": rounds, "batch": batch,
        "seconds": best, "us_per_event": {phase: 1e6 * s / events for phase, s in best.items()},
        "total_seconds": total, "events_per_cpu_second": events / total if total else 0.0, **counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.bench.steps", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many (default 3)")
    parser.add_argument("--batch", type=int, default=5000, help="input records per edge batch (the worker's KPI_BATCH_MAX)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    options = parser.parse_args(argv)
    if min(options.events, options.reps, options.rounds, options.batch) < 1:
        parser.error("--events, --reps, --rounds and --batch must be at least 1")
    result = measure(options.events, options.reps, options.seed, options.rounds, options.batch)
    if options.json:
        print(json.dumps(result))
        return 0
    print(f"{result['events']:,} events, {result['reps']:,} reps, seed {result['seed']}, "
          f"batches of {result['batch']:,}; CPU seconds, best of {result['rounds']}")
    for phase in PHASES:
        print(f"  {phase:9s} {result['seconds'][phase]:7.3f} s  {result['us_per_event'][phase]:6.1f} µs/event")
    print(f"  {'total':9s} {result['total_seconds']:7.3f} s  {1e6 * result['total_seconds'] / result['events']:6.1f} µs/event"
          f"  ({result['events_per_cpu_second']:,.0f} events per CPU second)")
    print(f"  {result['rejected']:,} rejected, {result['state_bytes']:,} state bytes written, "
          f"{result['records']:,} KPI records built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
