"""Same events, same KPIs and same DLQ, whatever the order they arrive in over several input partitions.

Hypothesis spreads a few hundred seeded simulator records over input partitions and
merges the partitions in any order that keeps each partition's own order (as consumers
reading partitions at different speeds do). The traffic spans less than the 7-day lateness
limit, so no merge makes a record too late. Each run is compared with the run in the simulator's own
order, keyed by entity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kpi_state.errors import InvalidEvent
from kpi_state.routing import entity_key
from streams.simulator import Organisation, Simulator
from tests.inprocess import DAY, Input, Outcome, Settings, decoder, partition_of, run_pipeline, topic_of

START = datetime(2026, 9, 1, 8, tzinfo=timezone.utc).timestamp()
END = START + 6.5 * DAY  # less than the 7-day lateness limit: no merge makes a record too late
PARTITIONS = 3
STAGE = Settings(batch=50)  # several batches and flushes per run


def _traffic() -> tuple[list[tuple[str, bytes | None, bytes]], dict[str, tuple[str, str]], list[bytes | None]]:
    # A small organisation (6 reps: few series to recompute per run), little activity and a
    # full pipeline at the start, so that deals move within the week.
    org = Organisation.generate(7, regions=2, teams_per_region=1, reps_per_team=3)
    sim = Simulator(7, org=org, start=START, bad_ratio=0.02, duplicate_ratio=0.05, initial_deals=10, activity=0.05)
    rows = sim.next_batch(400, until=END)
    directory = {e["data"]["rep_id"]: (e["data"]["team_id"], e["data"]["region_id"]) for e in sim.rep_upserts()}
    dec = decoder(STAGE)
    entities: list[bytes | None] = []
    for _, _, value in rows:
        try:
            entities.append(entity_key(dec.decode(value)))
        except InvalidEvent:
            entities.append(None)  # malformed: belongs to no entity
    return rows, directory, entities


ROWS, DIRECTORY, ENTITIES = _traffic()
GROUPS = sorted({e for e in ENTITIES if e is not None})


def merge(streams: dict[tuple[str, int], list[Input]], picks: Sequence[int]) -> list[Input]:
    """Interleave the streams: each pick names the next stream to read (modulo the ones left)."""
    queues = [list(reversed(items)) for _, items in sorted(streams.items())]
    out: list[Input] = []
    picks_iter = iter(picks)
    while any(queues):
        live = [q for q in queues if q]
        queue = live[next(picks_iter, 0) % len(live)]
        out.append(queue.pop())
    return out


def spread(partition_of_row: Sequence[int]) -> dict[tuple[str, int], list[Input]]:
    streams: dict[tuple[str, int], list[Input]] = {}
    for (_, key, value), partition in zip(ROWS, partition_of_row):
        topic = topic_of(value)
        streams.setdefault((topic, partition), []).append(Input(topic, partition, value, key))
    return streams


def run(inputs: list[Input]) -> Outcome:
    return run_pipeline(inputs, DIRECTORY, wall_now=END + DAY, settings=STAGE)


def keyed_baseline() -> Outcome:
    """The simulator's order, each entity's events on one partition."""
    parts = [partition_of(entity, PARTITIONS) for entity in ENTITIES]
    return run([Input(topic_of(v), p, v, k) for (_, k, v), p in zip(ROWS, parts)])


BASELINE = keyed_baseline()


def differences(got: Outcome, want: Outcome) -> list[str]:
    """Records that differ; a key published by one run only must say 'nothing' (0 or null)."""
    a, b = got.values(), want.values()
    problems = []
    for key in sorted(set(a) | set(b)):
        if key in a and key in b:
            if a[key] != b[key]:
                problems.append(f"{key}: {a[key]} vs {b[key]}")
        else:
            value, numerator = (a.get(key) or b[key])[:2]
            if value not in (None, 0) or numerator not in (None, 0):
                problems.append(f"{key}: {value} published by one run only")
    return problems


def assert_same(outcome: Outcome) -> None:
    problems = differences(outcome, BASELINE)
    assert not problems, f"{len(problems)} records differ:\n" + "\n".join(problems[:10])
    assert outcome.dead_letters() == BASELINE.dead_letters()


def test_the_traffic_has_what_the_properties_need() -> None:
    # Opportunities with several events (so reordering them matters), malformed records and
    # re-sent ones (so the DLQ and dedup are compared), and less than the lateness limit.
    opportunities = [e for e in ENTITIES if e is not None and e.startswith(b"opp:")]
    assert len(ROWS) > 250
    assert len(opportunities) - len(set(opportunities)) > 40
    assert STAGE.lateness_s > END - START
    assert len(BASELINE.dlq) >= 4
    assert len(BASELINE.latest) > 1000
    assert BASELINE.latest["won_deals|global|all|"]["value"] > 0


def test_the_comparison_sees_a_lost_event() -> None:
    # Dropping one win must show up: the property tests below could not fail otherwise.
    won = next(i for i, (_, _, v) in enumerate(ROWS) if b'"opportunity.won"' in v)
    parts = [partition_of(entity, PARTITIONS) for entity in ENTITIES]
    inputs = [Input(topic_of(v), p, v, k) for i, ((_, k, v), p) in enumerate(zip(ROWS, parts)) if i != won]
    assert differences(run(inputs), BASELINE)


SETTINGS = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Shrinking a failure of the unkeyed merges replays hundreds of runs (minutes): report the
# first failing merge as found instead.
NO_SHRINK = settings(SETTINGS, phases=[Phase.explicit, Phase.reuse, Phase.generate])
picks = st.lists(st.integers(0, 2 * PARTITIONS - 1), min_size=len(ROWS), max_size=len(ROWS))


@SETTINGS
@given(by_entity=st.lists(st.integers(0, PARTITIONS - 1), min_size=len(GROUPS), max_size=len(GROUPS)),
       unkeyed=st.integers(0, PARTITIONS - 1), picks=picks)
def test_any_merge_that_keeps_each_entitys_order_gives_the_same_kpis_and_dlq(
    by_entity: list[int], unkeyed: int, picks: list[int]
) -> None:
    # Every entity's events on one partition (of its topic), the entities spread any way.
    partition = dict(zip(GROUPS, by_entity))
    streams = spread([partition[e] if e is not None else unkeyed for e in ENTITIES])
    assert_same(run(merge(streams, picks)))


@NO_SHRINK
@given(by_record=st.lists(st.integers(0, PARTITIONS - 1), min_size=len(ROWS), max_size=len(ROWS)), picks=picks)
def test_any_merge_of_unkeyed_records_gives_the_same_kpis_and_dlq(by_record: list[int], picks: list[int]) -> None:
    # Records produced without a key: one entity's events land on different partitions, and
    # lifecycles must still be judged in event-time order (issue 10).
    assert_same(run(merge(spread(by_record), picks)))


def _envelope(event_id: str, event_type: str, when: float, **data: object) -> bytes:
    stamp = datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"event_id": event_id, "type": event_type, "occurred_at": stamp, "source": "crm",
                       "schema_version": 1, "data": data}).encode()


@pytest.mark.parametrize("move_id", ["0-move", "z-move"])  # sorts before / after the creation's id
@pytest.mark.parametrize("move_first", [False, True])
def test_a_stage_change_at_the_instant_of_creation_counts(move_id: str, move_first: bool) -> None:
    # CRM exports with one date per row (the real one replayed by streams/replay_csv.py) give
    # the creation and the first stage change the same instant: the change is not before the
    # creation, whatever the event ids and the arrival order.
    created = _envelope("m-created", "opportunity.created", START, opportunity_id="o1", rep_id="r-01",
                        stage="prospecting")
    moved = _envelope(move_id, "opportunity.stage_changed", START, opportunity_id="o1", rep_id="r-01",
                      to_stage="qualified")
    later = _envelope("later", "call.logged", START + 8 * DAY, rep_id="r-01")  # past the lateness horizon
    values = [moved, created, later] if move_first else [created, moved, later]
    outcome = run_pipeline([Input(topic_of(v), 0, v) for v in values], {"r-01": ("t1", "north")},
                           wall_now=START + 9 * DAY, settings=STAGE)
    assert outcome.dlq == []
    latest = outcome.latest
    assert latest["open_opportunities|rep:r-01|all||stage=qualified"]["value"] == 1
    assert latest["stage_conversion|rep:r-01|all||from=prospecting|to=qualified"]["value"] == 1
