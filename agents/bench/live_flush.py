"""A live flush's own CPU cost, in process: one day of activity, a flush after every second of it.

`kpi-pipeline bench` (c) compresses a day into a few seconds so that days close (and
alerts fire) often; each day move recomputes every current period of every scope, which
hides what a flush costs between two day moves, the case of live traffic nearly all day
long. This feeds a rollup and view the cell updates a worker's entity steps send for
`--events` activity events a second (calls, emails, meetings, spread over the reps, their
teams and the company), all on one day, and times in thread CPU the rollup's updates and
each flush's `refresh` (the periods take the updates when read, so the two go together):

    python -m agents.bench.live_flush [--reps 500] [--events 7500] [--flushes 30] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig
from kpi_state.rollup import Rollup
from streams.settings import DEFAULT_STAGES

DAY = "2026-03-10"
REPS_PER_TEAM = 20
KINDS = ("calls", "calls", "emails", "meetings_booked")  # roughly a day's mix


def measure(reps: int, events: int, flushes: int, seed: int = 1) -> dict[str, Any]:
    """Mean CPU milliseconds (rollup updates, then the flush) and records per flush over
    `flushes` seconds of traffic."""
    rng = random.Random(seed)
    view = KpiView(Rollup("UTC"), ViewConfig(tz="UTC", stages=DEFAULT_STAGES, currency="EUR"))
    scopes_of = [(f"rep:r{n}", f"team:t{n // REPS_PER_TEAM}", "global") for n in range(reps)]
    cells: dict[str, dict[str, int]] = {}
    now = datetime.fromisoformat(DAY).replace(hour=8, tzinfo=timezone.utc).timestamp()

    def one_second() -> float:
        for _ in range(events):
            kind = rng.choice(KINDS)
            for scope in scopes_of[rng.randrange(reps)]:
                counts = cells.setdefault(scope, {})
                counts[kind] = counts.get(kind, 0) + 1
        # Cell updates are absolute, one per changed (scope, day), as the entity step sends them.
        updates = [(scope, CellUpdate({k: Decimal(n) for k, n in counts.items()}, {})) for scope, counts in cells.items()]
        began = time.thread_time()
        for scope, update in updates:
            view.rollup.update(0, scope, DAY, update)
        return time.thread_time() - began

    view.rollup.see_time(now)
    one_second()
    view.refresh(now)  # the first flush publishes every KPI of every new scope: not timed
    updating = flushing = 0.0
    records = 0
    for _ in range(flushes):
        updating += one_second()
        now += 1.0
        view.rollup.see_time(now)
        began = time.thread_time()
        records += len(view.refresh(now))
        flushing += time.thread_time() - began
    return {"reps": reps, "events_per_flush": events, "flushes": flushes,
            "ms_updates_per_flush": 1000 * updating / flushes, "ms_per_flush": 1000 * flushing / flushes,
            "records_per_flush": records / flushes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.bench.live_flush", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--events", type=int, default=7500, help="activity events between two flushes")
    parser.add_argument("--flushes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the line")
    args = parser.parse_args(argv)
    if min(args.reps, args.events, args.flushes) < 1:
        parser.error("--reps, --events and --flushes must be at least 1")
    gc.freeze()  # as the worker does (agents.cli worker)
    gc.set_threshold(50_000, 20, 100)
    result = measure(args.reps, args.events, args.flushes, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['ms_updates_per_flush']:.1f} ms CPU of rollup updates, then {result['ms_per_flush']:.1f} ms "
              f"per flush, {result['records_per_flush']:,.0f} records per flush "
              f"({args.reps} reps, {args.events:,} events a second, {args.flushes} flushes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
