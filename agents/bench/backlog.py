"""The benchmark's backlog: N simulated events of a seeded organisation, at fixed event dates."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from streams.simulator import Organisation, Simulator

# Fixed, in the past: the same backlog on every run and every day (no wall clock in events).
DEFAULT_START = datetime(2026, 9, 1, tzinfo=UTC)
MAX_REPS_PER_TEAM = 10


class _Typed(msgspec.Struct):
    type: str


_TYPE_OF = msgspec.json.Decoder(_Typed)


def org_shape(reps: int) -> tuple[int, int, int]:
    """(regions, teams per region, reps per team) whose product is exactly `reps`."""
    if reps < 1:
        raise ValueError("the benchmark needs at least one rep")
    regions = next((r for r in (5, 4, 3, 2) if reps % r == 0 and reps // r >= 2), 1)
    per_region = reps // regions
    per_team = next(d for d in range(min(MAX_REPS_PER_TEAM, per_region), 0, -1) if per_region % d == 0)
    return regions, per_region // per_team, per_team


@dataclass
class Backlog:
    """Records by topic kind ("crm", "billing") as (key, value), and what the simulator made."""

    seed: int
    reps: int
    records: dict[str, list[tuple[bytes | None, bytes]]]
    organisation: Organisation
    type_counts: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    first_ts: int = 0
    last_ts: int = 0
    opportunities: int = 0

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.records.values())

    def write_reps_file(self, path: Path) -> Path:
        """The rep → team → region mapping as the worker's KPI_REPS_FILE."""
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rep_id", "team_id", "region_id"])
            for rep in self.organisation.reps:
                writer.writerow([rep.rep_id, rep.team_id, rep.region_id])
        return path


def build_backlog(events: int, reps: int, seed: int, start: datetime = DEFAULT_START) -> Backlog:
    """Exactly `events` records (good ones and the simulator's at-least-once re-sends)."""
    regions, teams, per_team = org_shape(reps)
    org = Organisation.generate(seed, regions=regions, teams_per_region=teams, reps_per_team=per_team)
    simulator = Simulator(seed, start=start, org=org)
    rows = simulator.next_records(events)
    if len(rows) < events:
        raise RuntimeError(f"the simulator made only {len(rows)} of {events} events")
    records: dict[str, list[tuple[bytes | None, bytes]]] = {"crm": [], "billing": []}
    # Counted from what is handed out: the simulator's own counters include records it
    # has generated but keeps pending for the next batch.
    counts: Counter[str] = Counter()
    duplicates = 0
    for row in rows:
        records[row.topic_kind].append((row.key, row.value))
        if row.duplicate:
            duplicates += 1
        else:
            counts[_TYPE_OF.decode(row.value).type] += 1
    return Backlog(
        seed=seed, reps=reps, records=records, organisation=org, type_counts=counts,
        duplicates=duplicates, first_ts=rows[0].timestamp, last_ts=rows[-1].timestamp,
        opportunities=counts["opportunity.created"],
    )
