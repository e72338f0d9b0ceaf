"""Tests of the traffic simulator: determinism, order, business consistency, bad input."""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

from streams.simulator import BAD_KINDS, SCENARIOS, Organisation, SimRecord, Simulator

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # a Monday morning
STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
CURRENCIES = ("EUR", "USD", "GBP")
DAY = 86_400

# Contract §2, written out here so the checks below owe nothing to the code under test.
REQUIRED: dict[str, tuple[str, ...]] = {
    "call.logged": ("rep_id",),
    "email.sent": ("rep_id",),
    "meeting.booked": ("rep_id",),
    "demo.completed": ("rep_id",),
    "prospect.contacted": ("rep_id", "contact_id"),
    "opportunity.created": ("opportunity_id", "rep_id", "stage"),
    "opportunity.stage_changed": ("opportunity_id", "rep_id", "to_stage"),
    "opportunity.won": ("opportunity_id", "rep_id", "amount", "currency"),
    "opportunity.lost": ("opportunity_id", "rep_id"),
    "invoice.issued": ("invoice_id", "customer_id", "currency", "lines"),
    "payment.received": ("invoice_id", "customer_id", "amount", "currency"),
    "credit_note.issued": ("invoice_id", "customer_id", "amount", "currency"),
    "spend.recorded": ("amount", "currency", "category"),
}
BILLING_TYPES = {"invoice.issued", "payment.received", "credit_note.issued", "spend.recorded"}
STRING_FIELDS = (
    "rep_id", "contact_id", "opportunity_id", "invoice_id", "customer_id", "account_id",
    "team_id", "stage", "to_stage", "from_stage", "currency", "category", "reason",
)  # fmt: skip
POSITIVE_AMOUNT = {"payment.received", "credit_note.issued", "spend.recorded"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


# --------------------------------------------------------------------------------------
# An independent contract check: returns the DLQ reason code a record deserves, or None
# --------------------------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise TypeError(value)
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise TypeError(value) from exc


def _timestamp_ok(value: str) -> bool:
    if not RFC3339.fullmatch(value):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def contract_problem(
    value: bytes, stages: tuple[str, ...] = STAGES, currencies: tuple[str, ...] = CURRENCIES
) -> str | None:
    """The reason code (contract §3) for a bad record, None for a usable one."""
    if len(value) > 64 * 1024:
        return "too_large"
    try:
        doc = json.loads(value.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return "not_json"
    if not isinstance(doc, dict):
        return "not_object"
    if any(name not in doc for name in ("event_id", "type", "occurred_at")):
        return "missing_field"
    if not all(isinstance(doc[name], str) for name in ("event_id", "type", "occurred_at")):
        return "bad_type"
    if not isinstance(doc.get("data"), dict):
        return "bad_type"
    if not 1 <= len(doc["event_id"]) <= 128:
        return "bad_value"
    if doc["type"] not in REQUIRED:
        return "unknown_type"
    if not _timestamp_ok(doc["occurred_at"]):
        return "bad_value"
    return _data_problem(doc["type"], doc["data"], stages, currencies)


def _data_problem(
    etype: str, data: dict[str, Any], stages: tuple[str, ...], currencies: tuple[str, ...]
) -> str | None:
    if any(name not in data for name in REQUIRED[etype]):
        return "missing_field"
    if any(name in data and not isinstance(data[name], str) for name in STRING_FIELDS):
        return "bad_type"
    if "duration_s" in data:
        duration = data["duration_s"]
        if isinstance(duration, bool) or not isinstance(duration, int):
            return "bad_type"
        if duration < 0:
            return "bad_value"
    try:
        amount = _money(data["amount"]) if "amount" in data else None
        lines = _lines(data["lines"]) if "lines" in data else []
        total = _money(data["total"]) if "total" in data else None
    except TypeError:
        return "bad_type"
    if amount is not None and (amount < 0 or (amount == 0 and etype in POSITIVE_AMOUNT)):
        return "bad_value"
    if "lines" in data and (
        not lines or any(q <= 0 or p < 0 or (c is not None and c < 0) for q, p, c in lines)
    ):
        return "bad_value"
    if "currency" in data and data["currency"] not in currencies:
        return "unknown_currency"
    for name in ("stage", "to_stage", "from_stage"):
        if name in data and data[name] not in stages:
            return "unknown_stage"
    if total is not None and total != sum(q * p for q, p, _ in lines):
        return "inconsistent_total"
    return None


def _lines(raw: Any) -> list[tuple[Decimal, Decimal, Decimal | None]]:
    if not isinstance(raw, list) or not all(isinstance(line, dict) for line in raw):
        raise TypeError(raw)
    out = []
    for line in raw:
        if not isinstance(line.get("sku"), str):
            raise TypeError(line)
        cost = _money(line["unit_cost"]) if "unit_cost" in line else None
        out.append((_money(line["quantity"]), _money(line["unit_price"]), cost))
    return out


# --------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------


def _parse(record: SimRecord) -> dict[str, Any]:
    return json.loads(record.value, parse_float=Decimal)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(scope="module")
def long_run() -> tuple[Simulator, list[tuple[SimRecord, dict[str, Any]]]]:
    """About three months of traffic for the default organisation, duplicates dropped."""
    sim = Simulator(11, start=START, duplicate_ratio=0.002)
    records = sim.next_records(150_000)
    return sim, [(r, _parse(r)) for r in records if not r.duplicate]


def _events(long_run: Any, *types: str) -> list[dict[str, Any]]:
    return [doc for _, doc in long_run[1] if not types or doc["type"] in types]


# --------------------------------------------------------------------------------------
# Determinism and order
# --------------------------------------------------------------------------------------


def test_same_seed_and_arguments_give_identical_bytes() -> None:
    def run() -> tuple[list[dict[str, Any]], list[tuple[str, bytes | None, bytes]]]:
        sim = Simulator(5, start=START.timestamp(), bad_ratio=0.05, scenario="slump")
        return sim.rep_upserts(), sim.next_batch(20_000)

    assert run() == run()


def test_different_seeds_give_different_traffic() -> None:
    first = Simulator(1, start=START).next_batch(500)
    second = Simulator(2, start=START).next_batch(500)
    assert first != second


def test_batch_boundaries_and_until_do_not_change_the_stream() -> None:
    whole = Simulator(9, start=START, bad_ratio=0.05).next_batch(12_000)
    pieces = Simulator(9, start=START, bad_ratio=0.05)
    cut: list[tuple[str, bytes | None, bytes]] = []
    horizon = START.timestamp()
    while len(cut) < len(whole):
        horizon += 6 * 3600
        batch = pieces.next_batch(min(700, len(whole) - len(cut)), until=horizon)
        assert all(_timestamp_of(value) <= horizon for _, _, value in batch)
        cut.extend(batch)
    assert cut == whole


def _timestamp_of(value: bytes) -> float:
    try:
        return _epoch(json.loads(value)["occurred_at"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return float("-inf")  # a malformed record has no usable time to check


def test_good_traffic_is_the_same_whatever_the_bad_ratio() -> None:
    clean = Simulator(4, start=START).next_records(8_000)
    dirty = [r for r in Simulator(4, start=START, bad_ratio=0.2).next_records(10_000) if not r.bad]
    assert dirty[:7_000] == clean[:7_000]


def test_event_time_never_goes_backwards(long_run: Any) -> None:
    _, rows = long_run
    stamps = [_epoch(doc["occurred_at"]) for _, doc in rows]
    assert stamps == sorted(stamps)
    assert all(record.timestamp == stamp for (record, _), stamp in zip(rows, stamps))
    assert stamps[0] >= START.timestamp()
    assert stamps[-1] - stamps[0] > 60 * DAY  # a long run spans months, not minutes


def test_start_must_be_epoch_seconds_or_an_aware_datetime() -> None:
    aware = Simulator(3, start=START).next_batch(50)
    assert Simulator(3, start=START.timestamp()).next_batch(50) == aware
    with pytest.raises(ValueError, match="aware"):
        Simulator(3, start=datetime(2026, 3, 2))


# --------------------------------------------------------------------------------------
# Coverage and envelope
# --------------------------------------------------------------------------------------


def test_every_contract_type_appears_in_a_long_run(long_run: Any) -> None:
    seen = Counter(doc["type"] for doc in _events(long_run))
    assert set(seen) == set(REQUIRED)
    assert seen["call.logged"] > seen["meeting.booked"] > seen["demo.completed"]
    assert seen["opportunity.created"] > seen["opportunity.won"] > seen["credit_note.issued"]


def test_every_good_record_passes_the_contract_and_goes_to_its_topic(long_run: Any) -> None:
    for record, doc in long_run[1]:
        assert contract_problem(record.value) is None, record.value
        assert record.topic_kind == ("billing" if doc["type"] in BILLING_TYPES else "crm")


def test_keys_name_the_entity(long_run: Any) -> None:
    for record, doc in long_run[1]:
        data = doc["data"]
        if "opportunity_id" in data:
            expected = data["opportunity_id"]
        elif doc["type"] == "spend.recorded":
            expected = data.get("team_id")
        elif doc["type"] in BILLING_TYPES:
            expected = data["customer_id"]
        else:
            expected = data["rep_id"]
        assert record.key == (expected.encode() if expected else None)


def test_event_ids_are_unique_except_true_duplicates() -> None:
    sim = Simulator(8, start=START, duplicate_ratio=0.01)
    records = sim.next_records(30_000)
    by_id: dict[str, list[SimRecord]] = defaultdict(list)
    for record in records:
        by_id[json.loads(record.value)["event_id"]].append(record)
    repeats = [group for group in by_id.values() if len(group) > 1]
    assert len(repeats) == sim.duplicates > 100
    for group in repeats:
        assert len(group) == 2 and group[0].value == group[1].value and group[1].duplicate


def test_organisation_and_rep_upserts() -> None:
    org = Organisation.generate(0)
    assert [region.region_id for region in org.regions] == ["emea", "amer", "apac"]
    assert [team.team_id for team in org.teams][:2] == ["t-emea-1", "t-emea-2"]
    assert [rep.rep_id for rep in org.reps] == [f"r-{i:02d}" for i in range(1, 25)]
    upserts = Simulator(0, start=START, org=org).rep_upserts()
    assert len(upserts) == 24
    for envelope, rep in zip(upserts, org.reps):
        assert envelope["type"] == "rep.upserted"
        assert _timestamp_ok(envelope["occurred_at"])
        assert envelope["data"]["rep_id"] == rep.rep_id
        assert envelope["data"]["team_id"] == rep.team_id
        assert rep.team_id.startswith(f"t-{envelope['data']['region_id']}-")
    assert len({e["data"]["name"] for e in upserts}) == 24
    assert len({e["event_id"] for e in upserts}) == 24


def test_traffic_only_names_reps_of_the_organisation() -> None:
    org = Organisation.generate(1, regions=2, teams_per_region=1, reps_per_team=3)
    sim = Simulator(1, start=START, org=org)
    rep_ids = {rep.rep_id for rep in org.reps}
    team_ids = {team.team_id for team in org.teams}
    for record in sim.next_records(10_000):
        data = _parse(record)["data"]
        assert data.get("rep_id", "r-01") in rep_ids
        assert data.get("team_id", "t-emea-1") in team_ids


# --------------------------------------------------------------------------------------
# Business consistency
# --------------------------------------------------------------------------------------


def test_calls_are_plausible(long_run: Any) -> None:
    calls = _events(long_run, "call.logged")
    assert all(c["data"]["duration_s"] >= 0 for c in calls)
    connected = [c for c in calls if c["data"]["outcome"] == "connected"]
    assert 0.2 < len(connected) / len(calls) < 0.5
    assert min(c["data"]["duration_s"] for c in connected) >= 30
    meetings = len(_events(long_run, "meeting.booked"))
    assert 0.02 < meetings / len(calls) < 0.15  # a realistic meeting rate


def test_opportunities_only_move_forward_and_close_at_most_once(long_run: Any) -> None:
    stage_of: dict[str, int] = {}
    closed: set[str] = set()
    for doc in _events(long_run):
        data, etype = doc["data"], doc["type"]
        opp = data.get("opportunity_id")
        if etype == "opportunity.created":
            assert opp not in stage_of
            stage_of[opp] = STAGES.index(data["stage"])
        elif etype == "opportunity.stage_changed":
            assert opp not in closed
            assert data["from_stage"] == STAGES[stage_of[opp]]
            assert STAGES.index(data["to_stage"]) > stage_of[opp]
            stage_of[opp] = STAGES.index(data["to_stage"])
        elif etype in ("opportunity.won", "opportunity.lost"):
            assert opp in stage_of and opp not in closed
            closed.add(opp)
        elif opp is not None:  # meetings and demos of a deal happen while it is open
            assert opp in stage_of and opp not in closed
    jumps = Counter(
        STAGES.index(d["data"]["to_stage"]) - STAGES.index(d["data"]["from_stage"])
        for d in _events(long_run, "opportunity.stage_changed")
    )
    assert jumps[1] > jumps[2] > 0  # mostly one stage at a time, sometimes skipping one


def test_demos_and_stage_meetings_match_the_funnel(long_run: Any) -> None:
    stage_of: dict[str, str] = {}
    for doc in _events(long_run):
        data = doc["data"]
        if doc["type"] == "opportunity.created":
            stage_of[data["opportunity_id"]] = data["stage"]
        elif doc["type"] == "opportunity.stage_changed":
            stage_of[data["opportunity_id"]] = data["to_stage"]
        elif doc["type"] == "demo.completed":
            assert stage_of[data["opportunity_id"]] == "demo"


def test_deals_are_won_close_to_their_expected_value_after_weeks(long_run: Any) -> None:
    created = {d["data"]["opportunity_id"]: d for d in _events(long_run, "opportunity.created")}
    won = _events(long_run, "opportunity.won")
    lost = _events(long_run, "opportunity.lost")
    assert 0.1 < len(won) / (len(won) + len(lost)) < 0.6
    assert all(d["data"]["reason"] for d in lost)
    cycles = []
    for deal in won:
        opened = created[deal["data"]["opportunity_id"]]
        expected = _money(opened["data"]["amount"])
        ratio = _money(deal["data"]["amount"]) / expected
        assert Decimal("0.75") <= ratio <= Decimal("1.05")
        assert deal["data"]["currency"] == opened["data"]["currency"]
        cycles.append(_epoch(deal["occurred_at"]) - _epoch(opened["occurred_at"]))
    cycles.sort()
    assert 14 * DAY < cycles[len(cycles) // 2] < 70 * DAY


def test_invoice_lines_totals_and_due_dates(long_run: Any) -> None:
    invoices = _events(long_run, "invoice.issued")
    with_total = 0
    for doc in invoices:
        data = doc["data"]
        lines = _lines(data["lines"])
        assert 1 <= len(lines) <= 5
        assert all(q > 0 and p >= 0 for q, p, _ in lines)
        if "total" in data:
            with_total += 1
            assert _money(data["total"]) == sum(q * p for q, p, _ in lines)
        due = _epoch(data["due_at"]) - _epoch(doc["occurred_at"])
        assert due == 30 * DAY
    assert 0.3 < with_total / len(invoices) < 0.9  # "sometimes" a total


def test_every_invoice_bills_a_deal_won_before_it(long_run: Any) -> None:
    won_customers: dict[str, set[str]] = defaultdict(set)  # customer → currencies won in
    customer_of_opp: dict[str, str] = {}
    seen_customers: Counter[str] = Counter()
    for doc in _events(long_run):
        data = doc["data"]
        if doc["type"] == "opportunity.created":
            customer_of_opp[data["opportunity_id"]] = data["customer_id"]
        elif doc["type"] == "opportunity.won":
            won_customers[customer_of_opp[data["opportunity_id"]]].add(data["currency"])
        elif doc["type"] == "invoice.issued":
            assert data["currency"] in won_customers[data["customer_id"]]
            seen_customers[data["customer_id"]] += 1
    assert any(count > 1 for count in seen_customers.values())  # repeat customers exist


def test_payments_and_credit_notes_settle_issued_invoices_only_after_issue(long_run: Any) -> None:
    issued: dict[str, dict[str, Any]] = {}
    settled: Counter[str] = Counter()
    totals: dict[str, Decimal] = {}
    for doc in _events(long_run):
        data = doc["data"]
        if doc["type"] == "invoice.issued":
            issued[data["invoice_id"]] = doc
            totals[data["invoice_id"]] = sum(q * p for q, p, _ in _lines(data["lines"]))
        elif doc["type"] in ("payment.received", "credit_note.issued"):
            invoice = issued[data["invoice_id"]]  # KeyError: settles an unknown invoice
            assert _epoch(doc["occurred_at"]) >= _epoch(invoice["occurred_at"])
            assert data["customer_id"] == invoice["data"]["customer_id"]
            assert data["currency"] == invoice["data"]["currency"]
            assert _money(data["amount"]) > 0
            settled[data["invoice_id"]] += _money(data["amount"])
    assert all(settled[i] <= totals[i] for i in settled)
    fully_paid = sum(settled[i] == totals[i] for i in issued)
    assert 0.4 < fully_paid / len(issued) < 0.98  # most pay, some late, partial or never


def test_spend_is_categorised_and_mostly_per_team(long_run: Any) -> None:
    spend = _events(long_run, "spend.recorded")
    assert {d["data"]["category"] for d in spend} == {"marketing", "sales"}
    with_team = sum("team_id" in d["data"] for d in spend)
    assert 0.7 < with_team / len(spend) < 1.0


def test_custom_stages_and_currencies_are_respected() -> None:
    stages = ("lead", "trial", "closing")
    sim = Simulator(2, start=START, stages=stages, currencies=("USD",), bad_ratio=0.05)
    names: set[str] = set()
    for record in sim.next_records(60_000):
        if record.bad:
            assert contract_problem(record.value, stages, ("USD",)) == BAD_KINDS[record.bad]
            continue
        data = _parse(record)["data"]
        names.update(data[k] for k in ("stage", "from_stage", "to_stage") if k in data)
        assert data.get("currency", "USD") == "USD"
    assert names == set(stages)


# --------------------------------------------------------------------------------------
# Malformed records
# --------------------------------------------------------------------------------------


def test_bad_ratio_gives_that_fraction_of_really_invalid_records() -> None:
    sim = Simulator(6, start=START, bad_ratio=0.1)
    records = sim.next_records(30_000)
    bad = [r for r in records if r.bad]
    assert 0.09 < len(bad) / len(records) < 0.11
    assert Counter(r.bad for r in bad) == sim.bad_counts
    assert set(sim.bad_counts) == set(BAD_KINDS)
    for record in records:
        expected = BAD_KINDS[record.bad] if record.bad else None
        assert contract_problem(record.value) == expected, (record.bad, record.value[:300])


def test_bad_records_keep_event_time_order_where_they_have_one() -> None:
    records = Simulator(6, start=START, bad_ratio=0.2).next_records(5_000)
    stamps = [r.timestamp for r in records]
    assert stamps == sorted(stamps)
    for record in records:
        readable = _timestamp_of(record.value)
        assert readable in (float("-inf"), record.timestamp) or record.bad == "bad_timestamp"


def test_no_bad_records_by_default() -> None:
    sim = Simulator(6, start=START)
    assert not any(r.bad for r in sim.next_records(5_000))
    assert not sim.bad_counts


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def test_scenarios_are_listed_and_unknown_ones_refused() -> None:
    assert SCENARIOS == ("steady", "slump", "growth", "collapse")
    with pytest.raises(ValueError, match="steady, slump, growth, collapse"):
        Simulator(1, start=START, scenario="boom")


def _calls_per_day(records: list[SimRecord], rep_id: str, start: float, end: float) -> float:
    count = 0
    for record in records:
        if start <= record.timestamp < end and not record.duplicate:
            doc = _parse(record)
            count += doc["type"] == "call.logged" and doc["data"]["rep_id"] == rep_id
    return count / ((end - start) / DAY)


def test_slump_lowers_one_reps_calls_then_recovers() -> None:
    org = Organisation.generate(3, regions=1, teams_per_region=1, reps_per_team=4)
    slump_start = START + timedelta(days=21)  # a Monday: whole weeks on each side
    sim = Simulator(
        3, start=START, org=org, scenario="slump", slump_rep="r-02",
        slump_start=slump_start, slump_days=14,
    )  # fmt: skip
    assert sim.slump_window == (slump_start.timestamp(), slump_start.timestamp() + 14 * DAY)
    origin, begin, end = START.timestamp(), slump_start.timestamp(), sim.slump_window[1]
    records: list[SimRecord] = []
    while batch := sim.next_records(5_000, until=end + 21 * DAY):
        records.extend(batch)
    before = _calls_per_day(records, "r-02", origin, begin)
    during = _calls_per_day(records, "r-02", begin, end)
    after = _calls_per_day(records, "r-02", end, end + 21 * DAY)
    assert during < 0.4 * before
    assert after > 0.7 * before
    peer_before = _calls_per_day(records, "r-03", origin, begin)
    peer_during = _calls_per_day(records, "r-03", begin, end)
    assert 0.7 * peer_before < peer_during < 1.3 * peer_before


def test_slump_defaults_to_the_first_rep_after_four_weeks() -> None:
    sim = Simulator(1, start=START, scenario="slump")
    assert sim.slump_window == (START.timestamp() + 28 * DAY, START.timestamp() + 49 * DAY)
    with pytest.raises(ValueError, match="r-99"):
        Simulator(1, start=START, scenario="slump", slump_rep="r-99")


def test_growth_ramps_activity_up() -> None:
    org = Organisation.generate(2, regions=1, teams_per_region=1, reps_per_team=4)
    sim = Simulator(2, start=START, org=org, scenario="growth", growth_per_day=0.03)
    first_week_end = START.timestamp() + 7 * DAY
    late_start, late_end = START.timestamp() + 49 * DAY, START.timestamp() + 56 * DAY
    counts = Counter()
    while batch := sim.next_records(5_000, until=late_end):
        for record in batch:
            if record.timestamp < first_week_end:
                counts["first"] += 1
            elif late_start <= record.timestamp:
                counts["late"] += 1
    assert counts["late"] > 1.8 * counts["first"]


# --------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------


def test_generation_is_fast() -> None:
    sim = Simulator(1, start=START)
    began = time.perf_counter()
    sim.next_batch(50_000)
    # ~0.8 s on a slow 2-core CI box; the bound only catches an accidental O(n²).
    assert time.perf_counter() - began < 6.0
