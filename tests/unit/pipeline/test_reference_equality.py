"""The worker's steps in process give what the offline reference computes: simulated traffic and the real CRM export.

No broker and no clock: seeded traffic with fixed dates goes through tests.inprocess, and
every published record is compared with tests.oracle.reference.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.replay_csv import ColumnMapping, load_product_catalogue, load_rep_directory, replay_file
from streams.settings import DEFAULT_STAGES
from streams.simulator import Simulator
from tests.conftest import REPO, require, shared_dir
from tests.inprocess import (
    CRM,
    DAY,
    Input,
    Outcome,
    Settings,
    decode_all,
    differences_from_reference,
    partition_of,
    run_pipeline,
    topic_of,
)
from tests.oracle.reference import compute_reference

START = datetime(2026, 9, 1, tzinfo=timezone.utc).timestamp()
END = datetime(2026, 10, 20, tzinfo=timezone.utc).timestamp()
INPUT_PARTITIONS = 4


def simulated(seed: int, count: int) -> tuple[list[Input], dict[str, tuple[str, str]], int]:
    """Seeded traffic from 1 September to 20 October 2026, keyed as the simulator keys it,
    with the directory and how many records the simulator made malformed."""
    sim = Simulator(seed, start=START, bad_ratio=0.01, duplicate_ratio=0.02)
    rows = sim.next_records(count, until=END)
    inputs = [Input(topic_of(row.value), partition_of(row.key, INPUT_PARTITIONS), row.value, row.key) for row in rows]
    directory = {e["data"]["rep_id"]: (e["data"]["team_id"], e["data"]["region_id"]) for e in sim.rep_upserts()}
    return inputs, directory, sum(1 for row in rows if row.bad)


def reference_of(inputs: list[Input], directory: dict, settings: Settings = Settings()) -> dict:
    events = [e for e in decode_all((i.value for i in inputs), settings) if e.type != "rep.upserted"]
    return compute_reference(events, directory=directory, tz=settings.tz, now=max(e.ts for e in events),
                             stages=settings.stages)


def assert_matches(outcome: Outcome, reference: dict) -> None:
    problems = differences_from_reference(outcome, reference)
    assert not problems, f"{len(problems)} of {len(outcome.latest)} differ:\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("seed", [3, 17])
def test_simulated_traffic_matches_the_reference(seed: int) -> None:
    inputs, directory, malformed = simulated(seed, 4_000)
    outcome = run_pipeline(inputs, directory, wall_now=END + DAY)
    assert_matches(outcome, reference_of(inputs, directory))
    published = {key.split("|", 1)[0] for key, record in outcome.latest.items()
                 if record["value"] or record["numerator"] or record["denominator"]}
    # The comparison covers every family, not just activity counts: values that are not
    # empty (an empty KPI is published only when its status says something). This traffic's
    # few invoices and wins leave revenue, margin, payment and cycle KPIs empty; other tests cover those.
    for kpi in ("calls", "meeting_rate", "win_rate", "stage_conversion", "lead_conversion", "pipeline_value"):
        assert kpi in published, kpi
    # Exactly the malformed records are dead-lettered; re-sent good ones are dropped silently.
    assert malformed > 10
    assert len(outcome.dlq) == malformed, outcome.dead_letters()


def test_three_weeks_of_simulated_traffic_match_the_reference_for_billing_kpis_too() -> None:
    # Long enough for wins to be invoiced and invoices paid: revenue, margin, payment and
    # lifetime KPIs hold values here. (A quiet scope's `all` clv once stayed at the length
    # it had when its last cell came; this traffic's `unassigned` scopes showed it.)
    inputs, directory, _ = simulated(3, 40_000)
    outcome = run_pipeline(inputs, directory, wall_now=END + DAY)
    assert_matches(outcome, reference_of(inputs, directory))
    published = {key.split("|", 1)[0] for key, record in outcome.latest.items()
                 if record["value"] or record["numerator"] or record["denominator"]}
    for kpi in ("revenue", "gross_margin", "average_basket", "purchase_frequency", "days_to_pay", "cac",
                "clv", "ltv_to_cac", "revenue_growth", "sales_cycle_days", "pipeline_velocity"):
        assert kpi in published, kpi


def test_simulated_traffic_in_paris_matches_the_reference() -> None:
    # Local days, weeks and months in a zone with an offset, across the end-of-October DST change.
    settings = Settings(tz="Europe/Paris")
    inputs, directory, _ = simulated(5, 3_000)
    outcome = run_pipeline(inputs, directory, wall_now=END + DAY, settings=settings)
    assert_matches(outcome, reference_of(inputs, directory, settings))
    starts = {r["window_start"] for r in outcome.latest.values() if r["window"] == "month"}
    # September 2026 starts at 22:00 UTC on 31 August in Paris (CEST, +2).
    assert "2026-08-31T22:00:00Z" in starts


def crm_export() -> Path:
    for folder in (REPO / "examples" / "crm-sales-opportunities", shared_dir() / "data" / "crm-sales-opportunities"):
        if (folder / "sales_pipeline.csv").exists():
            return folder
    require(False, "the CRM export (examples/crm-sales-opportunities or shared/data) is missing")
    raise AssertionError("unreachable")


def crm_inputs(keep_team: str | None = None) -> tuple[list[Input], dict[str, tuple[str, str]], float]:
    """The export's events keyed by opportunity over 4 input partitions; optionally one team's only."""
    folder = crm_export()
    mapping = ColumnMapping(product_catalogue=load_product_catalogue(folder / "products.csv"))
    result = replay_file(folder / "sales_pipeline.csv", mapping, stages=DEFAULT_STAGES)
    reps = load_rep_directory(folder / "sales_teams.csv")
    directory = {e["data"]["rep_id"]: (e["data"]["team_id"], e["data"]["region_id"]) for e in reps}
    events = [e for e in result.events if keep_team is None or directory[e["data"]["rep_id"]][0] == keep_team]
    inputs = [
        Input(CRM, partition_of(key, INPUT_PARTITIONS), json.dumps(e).encode(), key)
        for e in events
        for key in [e["data"]["opportunity_id"].encode()]
    ]
    newest = max(datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00")).timestamp() for e in events)
    return inputs, directory, newest


# The export is in USD: report in USD so the file's own totals can be checked.
CRM_SETTINGS = Settings(currency="USD", batch=5_000)


def test_one_team_of_the_crm_export_matches_the_reference() -> None:
    # The fast loop's share of the real export: every event of the reps of one team.
    inputs, directory, newest = crm_inputs(keep_team=sorted({team for team, _ in directory_of_export()})[0])
    assert len(inputs) > 2_000
    outcome = run_pipeline(inputs, directory, wall_now=newest + DAY, settings=CRM_SETTINGS)
    # Every event of the export is usable (the replay emits a creation and the first stage
    # change at the same instant when the file has one date for both).
    assert not outcome.dlq, f"{outcome.dead_letters().total()} dead-lettered, e.g. {outcome.dlq[:3]}"
    assert_matches(outcome, reference_of(inputs, directory, CRM_SETTINGS))


def directory_of_export() -> list[tuple[str, str]]:
    return [(e["data"]["team_id"], e["data"]["region_id"]) for e in load_rep_directory(crm_export() / "sales_teams.csv")]


@pytest.fixture(scope="module")
def crm_run() -> tuple[Outcome, dict]:
    inputs, directory, newest = crm_inputs()
    outcome = run_pipeline(inputs, directory, wall_now=newest + DAY, settings=CRM_SETTINGS)
    return outcome, reference_of(inputs, directory, CRM_SETTINGS)


@pytest.mark.slow
def test_the_crm_export_matches_the_reference(crm_run) -> None:
    outcome, reference = crm_run
    assert len(outcome.latest) > 100_000
    assert not outcome.dlq, f"{outcome.dead_letters().total()} dead-lettered, e.g. {outcome.dlq[:3]}"
    assert_matches(outcome, reference)


@pytest.mark.slow
def test_the_crm_export_gives_the_published_totals(crm_run) -> None:
    # SOURCE.md: 4,238 won, 2,473 lost (6,711 closed), won value 10,005,534.
    outcome, _ = crm_run
    assert outcome.latest["won_deals|global|all|"]["value"] == 4238
    rate = outcome.latest["win_rate|global|all|"]
    assert (rate["numerator"], rate["denominator"]) == (4238, 6711)
    assert outcome.latest["bookings|global|all|"]["value"] == 10_005_534


def test_the_crm_export_without_keys_matches_the_reference_when_one_input_partition_is_read_late() -> None:
    # Without keys, one opportunity's events land on every input partition. Here partition
    # 2's first record reaches the worker only after 600 records of the others (a fetch
    # that missed it, a partition filled late): weeks of event time at the export's start.
    keyed, directory, newest = crm_inputs(keep_team=sorted({team for team, _ in directory_of_export()})[0])
    spread = [Input(CRM, index % INPUT_PARTITIONS, item.value) for index, item in enumerate(keyed)]
    late = [item for item in spread if item.partition == 2]
    early = [item for item in spread if item.partition != 2]
    arrival = early[:600] + [item for pair in zip(early[600:], late) for item in pair]
    arrival += early[600 + len(late):] + late[len(early) - 600:]
    assert sorted(map(id, arrival)) == sorted(map(id, spread))
    settings = Settings(currency="USD", batch=200)  # partition 2 is not in the first batches
    reference = reference_of(spread, directory, settings)
    known = frozenset(f"{CRM}|{partition}" for partition in range(INPUT_PARTITIONS))
    outcome = run_pipeline(arrival, directory, wall_now=newest + DAY, settings=settings, input_partitions=known)
    assert not outcome.dlq, f"{outcome.dead_letters().total()} dead-lettered, e.g. {outcome.dlq[:3]}"
    assert_matches(outcome, reference)
    # The same arrival with partition 2 unknown orphans what it would have matched.
    blind = run_pipeline(arrival, directory, wall_now=newest + DAY, settings=settings)
    assert {reason for _, reason in blind.dlq} == {"orphaned"}
