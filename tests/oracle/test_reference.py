"""The offline reference (tests.oracle.reference): small scenarios computed by hand.

Every expected number is worked out in the comments from CONTRACT §4 and the
interpretation notes; the module under test must agree with them.
Default stages: prospecting(0) qualified(1) meeting(2) demo(3) proposal(4) negotiation(5).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal as D

import pytest

from kpi_state import events as ev
from tests.oracle.reference import DEFAULT_STAGES, Ratio, compute_reference

DIRECTORY = {"r1": ("t1", "north"), "r2": ("t1", "north"), "r3": ("t2", "south")}
_ids = itertools.count()


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _eid(kw: dict) -> str:
    return kw.pop("event_id", None) or f"e{next(_ids)}"


# --- event builders ------------------------------------------------------------------


def call(rep, when, **kw):
    return ev.CallLogged(event_id=_eid(kw), ts=at(when), rep_id=rep, **kw)


def email(rep, when, **kw):
    return ev.EmailSent(event_id=_eid(kw), ts=at(when), rep_id=rep)


def meeting(rep, when, **kw):
    return ev.MeetingBooked(event_id=_eid(kw), ts=at(when), rep_id=rep)


def demo(rep, when, **kw):
    return ev.DemoCompleted(event_id=_eid(kw), ts=at(when), rep_id=rep)


def prospect(rep, when, **kw):
    return ev.ProspectContacted(event_id=_eid(kw), ts=at(when), rep_id=rep, contact_id="c")


def created(opp, rep, stage, when, amount=None, **kw):
    money = {} if amount is None else {"amount": D(amount), "amount_original": D(amount), "currency": "EUR"}
    return ev.OpportunityCreated(event_id=_eid(kw), ts=at(when), opportunity_id=opp, rep_id=rep, stage=stage, **money)


def moved(opp, rep, to, when, **kw):
    return ev.OpportunityStageChanged(event_id=_eid(kw), ts=at(when), opportunity_id=opp, rep_id=rep, to_stage=to)


def won(opp, rep, when, amount, **kw):
    return ev.OpportunityWon(
        event_id=_eid(kw), ts=at(when), opportunity_id=opp, rep_id=rep,
        amount=D(amount), amount_original=D(amount), currency="EUR",
    )


def lost(opp, rep, when, **kw):
    return ev.OpportunityLost(event_id=_eid(kw), ts=at(when), opportunity_id=opp, rep_id=rep)


def invoice(inv, customer, when, lines, rep=None, due=None, **kw):
    """lines: (quantity, unit_price, unit_cost or None)."""
    built = tuple(
        ev.InvoiceLine(
            sku=f"s{i}", quantity=D(q), unit_price=D(p), unit_price_original=D(p),
            unit_cost=None if c is None else D(c), unit_cost_original=None if c is None else D(c),
        )
        for i, (q, p, c) in enumerate(lines)
    )
    total = sum((line.quantity * line.unit_price for line in built), D(0))
    return ev.InvoiceIssued(
        event_id=_eid(kw), ts=at(when), invoice_id=inv, customer_id=customer, currency="EUR",
        lines=built, total=total, total_original=total, rep_id=rep,
        due_ts=None if due is None else at(due),
    )


def payment(inv, customer, when, amount, **kw):
    return ev.PaymentReceived(
        event_id=_eid(kw), ts=at(when), invoice_id=inv, customer_id=customer,
        amount=D(amount), amount_original=D(amount), currency="EUR",
    )


def credit(inv, customer, when, amount, **kw):
    return ev.CreditNoteIssued(
        event_id=_eid(kw), ts=at(when), invoice_id=inv, customer_id=customer,
        amount=D(amount), amount_original=D(amount), currency="EUR",
    )


def spend(when, amount, team=None, **kw):
    return ev.SpendRecorded(
        event_id=_eid(kw), ts=at(when), amount=D(amount), amount_original=D(amount),
        currency="EUR", category="marketing", team_id=team,
    )


# --- reading the result -----------------------------------------------------------------


def get(result, kpi, scope, window, start="", dims=()) -> Ratio:
    return result[(kpi, scope, window, start, dims)]


def value(result, kpi, scope, window, start="", dims=()):
    return get(result, kpi, scope, window, start, dims).value


def stage(s):
    return (("stage", s),)


def pair(a, b):
    return (("from", a), ("to", b))


MAR = "2026-03-01T00:00:00Z"  # month start, UTC
Q1 = "2026-01-01T00:00:00Z"  # quarter and year start, UTC


# --- activity, scopes, keys ----------------------------------------------------------------


@pytest.fixture(scope="module")
def activity():
    events = [
        call("r1", "2026-03-02T09:00:00Z"),  # Monday
        call("r1", "2026-03-03T09:00:00Z"),
        meeting("r1", "2026-03-03T10:00:00Z"),
        email("r1", "2026-03-04T09:00:00Z"),
        demo("r1", "2026-03-05T09:00:00Z"),
        prospect("r1", "2026-03-05T10:00:00Z"),
        call("r9", "2026-03-02T12:00:00Z"),  # r9 is not in the directory
        call("r2", "2026-03-09T09:00:00Z"),  # next Monday, the newest event
    ]
    return compute_reference(events, directory=DIRECTORY)


def test_activity_counts_per_calendar_window(activity):
    r = activity
    # r1: calls on 03-02 and 03-03 (same ISO week starting Monday 03-02).
    assert value(r, "calls", "rep:r1", "day", "2026-03-02T00:00:00Z") == 1
    assert value(r, "calls", "rep:r1", "week", "2026-03-02T00:00:00Z") == 2
    assert value(r, "calls", "rep:r1", "month", MAR) == 2
    assert value(r, "calls", "rep:r1", "quarter", Q1) == 2
    assert value(r, "calls", "rep:r1", "year", Q1) == 2
    assert value(r, "emails", "rep:r1", "month", MAR) == 1
    assert value(r, "meetings_booked", "rep:r1", "month", MAR) == 1
    assert value(r, "demos", "rep:r1", "month", MAR) == 1
    assert value(r, "prospects_contacted", "rep:r1", "month", MAR) == 1
    assert value(r, "opportunities_created", "rep:r1", "month", MAR) == 0
    # meeting_rate = 1 meeting / 2 calls
    m = get(r, "meeting_rate", "rep:r1", "week", "2026-03-02T00:00:00Z")
    assert (m.numerator, m.denominator, m.value) == (1, 2, 0.5)
    # On 03-02 alone: 0 meetings / 1 call.
    assert value(r, "meeting_rate", "rep:r1", "day", "2026-03-02T00:00:00Z") == 0.0
    # On 03-04 (an email only): 0 / 0 calls -> None.
    assert value(r, "meeting_rate", "rep:r1", "day", "2026-03-04T00:00:00Z") is None


def test_activity_rolls_up_rep_team_region_global(activity):
    r = activity
    # team t1 = r1 (2 calls) + r2 (1 call); north is t1's region; global adds r9.
    assert value(r, "calls", "team:t1", "month", MAR) == 3
    assert value(r, "calls", "region:north", "month", MAR) == 3
    assert value(r, "calls", "global", "month", MAR) == 4
    # A rep with no mapping counts under team and region `unassigned`.
    assert value(r, "calls", "rep:r9", "month", MAR) == 1
    assert value(r, "calls", "team:unassigned", "month", MAR) == 1
    assert value(r, "calls", "region:unassigned", "month", MAR) == 1
    assert value(r, "calls", "team:t1", "week", "2026-03-09T00:00:00Z") == 1


def test_keys_only_for_active_periods(activity):
    r = activity
    # r1 had nothing in the week of 03-09 nor on 03-06.
    assert ("calls", "rep:r1", "week", "2026-03-09T00:00:00Z", ()) not in r
    assert ("calls", "rep:r1", "day", "2026-03-06T00:00:00Z", ()) not in r
    # nobody of team t2 did anything
    assert not any(key[1] in ("team:t2", "region:south", "rep:r3") for key in r)
    # Within an active period, every KPI and every dim is there.
    dims = {key[4] for key in r if key[0] == "stage_conversion" and key[1:4] == ("rep:r1", "month", MAR)}
    assert dims == {pair(a, b) for a, b in zip(DEFAULT_STAGES, DEFAULT_STAGES[1:])}
    kpis = {key[0] for key in r if key[1:4] == ("rep:r1", "month", MAR)}
    assert {"revenue_growth", "price_effect", "volume_effect", "clv", "days_to_pay"} <= kpis
    assert "open_opportunities" not in kpis and "objective_attainment" not in kpis
    # Rolling windows and `all` have no calendar-only KPIs; snapshots only in `all`.
    assert ("revenue_growth", "rep:r1", "7d", "", ()) not in r
    assert ("open_opportunities", "rep:r1", "30d", "", ()) not in r
    assert value(r, "open_opportunities", "rep:r1", "all") == 0
    assert value(r, "open_opportunities", "rep:r1", "all", dims=stage("demo")) == 0
    assert value(r, "overdue_receivables", "rep:r1", "all") == 0
    assert value(r, "pipeline_velocity", "rep:r1", "all") is None


def test_rolling_windows_end_on_the_newest_day(activity):
    r = activity
    # newest event 03-09: 7d = 03-03 .. 03-09, so r1's call of 03-02 is out.
    assert value(r, "calls", "rep:r1", "7d") == 1
    assert value(r, "calls", "rep:r1", "30d") == 2
    assert value(r, "calls", "global", "7d") == 2  # r1 03-03 + r2 03-09
    assert value(r, "calls", "rep:r1", "all") == 2


def test_duplicates_keep_the_first():
    events = [
        call("r1", "2026-03-02T09:00:00Z", event_id="x"),
        call("r1", "2026-03-02T09:00:00Z", event_id="x"),  # re-sent: ignored
        call("r2", "2026-03-02T10:00:00Z", event_id="x"),  # conflicting: DLQ'd, ignored
        ev.RepUpserted(event_id="rep", ts=at("2026-03-02T08:00:00Z"), rep_id="r1", team_id="t9", region_id="x"),
    ]
    r = compute_reference(events, directory=DIRECTORY)
    assert value(r, "calls", "rep:r1", "all") == 1
    assert value(r, "calls", "global", "all") == 1
    assert not any(key[1] == "rep:r2" for key in r)
    assert not any(key[1] == "team:t9" for key in r)  # rep.upserted events: the directory argument rules


def test_no_events_no_keys():
    assert compute_reference([], directory=DIRECTORY) == {}


# --- the funnel ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def funnel():
    events = [
        # o1: created at qualified (prospecting is skipped: entered and left at 03-02, 0 days)
        created("o1", "r1", "qualified", "2026-03-02T00:00:00Z", 1000),
        created("o2", "r1", "prospecting", "2026-03-03T00:00:00Z", 500),
        # o1 qualified -> demo: left qualified after 2 days, meeting skipped (0 days)
        moved("o1", "r1", "demo", "2026-03-04T00:00:00Z"),
        # o2 prospecting -> qualified after 2 days
        moved("o2", "r1", "qualified", "2026-03-05T00:00:00Z"),
        lost("o2", "r1", "2026-03-06T00:00:00Z"),  # left qualified after 1 day
        # o3 created at proposal: prospecting..demo skipped at 03-07; no amount
        created("o3", "r1", "proposal", "2026-03-07T00:00:00Z"),
        created("o4", "r2", "meeting", "2026-03-08T00:00:00Z", 300),
        won("o5", "r1", "2026-03-08T01:00:00Z", 999),  # before o5 exists: invalid
        created("o5", "r1", "prospecting", "2026-03-08T02:00:00Z", 50),
        # invalid transitions, all ignored:
        moved("o2", "r1", "proposal", "2026-03-08T03:00:00Z"),  # after lost
        won("o2", "r1", "2026-03-08T04:00:00Z", 10),  # won after lost
        moved("o3", "r1", "qualified", "2026-03-08T05:00:00Z"),  # backwards
        moved("o3", "r1", "proposal", "2026-03-08T06:00:00Z"),  # same stage
        moved("o99", "r1", "demo", "2026-03-08T07:00:00Z"),  # unknown opportunity
        created("o1", "r1", "prospecting", "2026-03-08T08:00:00Z", 7),  # second created
        created("o6", "r1", "closing", "2026-03-08T08:30:00Z", 7),  # not a configured stage
        # o1 won after 8.5 days; left demo after 6.5 days
        won("o1", "r1", "2026-03-10T12:00:00Z", 1200),
        lost("o1", "r1", "2026-03-10T13:00:00Z"),  # after won in event time: invalid
    ]
    return compute_reference(events, directory=DIRECTORY)


def test_funnel_counts_and_rates(funnel):
    r = funnel
    # r1 created o1, o2, o3, o5 (the second o1 and o6 are invalid)
    assert value(r, "opportunities_created", "rep:r1", "month", MAR) == 4
    # won o1, lost o2 -> 1 / 2
    assert get(r, "win_rate", "rep:r1", "month", MAR) == Ratio(1, 2, 0.5)
    # of the 4 created in March, o1 was won -> 1/4
    assert get(r, "lead_conversion", "rep:r1", "month", MAR) == Ratio(1, 4, 0.25)
    assert value(r, "bookings", "rep:r1", "month", MAR) == 1200.0
    assert value(r, "won_deals", "rep:r1", "month", MAR) == 1
    assert value(r, "average_deal_size", "rep:r1", "month", MAR) == 1200.0
    # 03-10T12:00 - 03-02T00:00 = 8.5 days
    assert value(r, "sales_cycle_days", "rep:r1", "month", MAR) == 8.5
    # r2 only created o4
    assert value(r, "win_rate", "rep:r2", "month", MAR) is None
    assert value(r, "lead_conversion", "rep:r2", "month", MAR) == 0.0


def test_stage_conversion_cumulative_funnel(funnel):
    r = funnel

    def conv(a, b, scope="rep:r1", window="month", start=MAR):
        got = get(r, "stage_conversion", scope, window, start, pair(a, b))
        return got.numerator, got.denominator

    # entered prospecting: o1 (skipped), o2, o3 (skipped), o5 = 4; reached qualified+: o1, o2, o3
    assert conv("prospecting", "qualified") == (3, 4)
    # entered qualified: o1, o2, o3; reached meeting+: o1, o3 (o2 lost at qualified)
    assert conv("qualified", "meeting") == (2, 3)
    # entered meeting: o1 (skipped), o3 (skipped); both reached demo
    assert conv("meeting", "demo") == (2, 2)
    # entered demo: o1, o3; o1 won (beyond every stage), o3 is at proposal
    assert conv("demo", "proposal") == (2, 2)
    # entered proposal: o3 only, still there
    assert conv("proposal", "negotiation") == (0, 1)
    assert value(r, "stage_conversion", "rep:r1", "month", MAR, pair("demo", "proposal")) == 1.0
    # By entry day: o1 entered qualified on 03-02 and later reached meeting.
    assert conv("qualified", "meeting", window="day", start="2026-03-02T00:00:00Z") == (1, 1)
    # o2 entered qualified on 03-05 and was lost there.
    assert conv("qualified", "meeting", window="day", start="2026-03-05T00:00:00Z") == (0, 1)
    # o1 entered meeting on 03-04 (skipped) and went on to demo.
    assert conv("meeting", "demo", window="day", start="2026-03-04T00:00:00Z") == (1, 1)
    # o3 entered proposal on 03-07 and is still there
    assert value(r, "stage_conversion", "rep:r1", "month", MAR, pair("proposal", "negotiation")) == 0.0


def test_stage_duration(funnel):
    r = funnel

    def dur(s, window="month", start=MAR):
        return value(r, "stage_duration_days", "rep:r1", window, start, stage(s))

    # left prospecting: o1 0 d (skipped), o2 2 d, o3 0 d -> 2/3
    assert dur("prospecting") == pytest.approx(2 / 3)
    # left qualified: o1 2 d, o2 1 d (lost), o3 0 d -> 1
    assert dur("qualified") == pytest.approx(1.0)
    # left meeting: o1 0 d, o3 0 d (both skipped) -> 0
    assert dur("meeting") == 0.0
    # left demo: o1 6.5 d (won), o3 0 d -> 3.25
    assert dur("demo") == pytest.approx(3.25)
    # nobody left proposal or negotiation
    assert dur("proposal") is None
    assert dur("negotiation") is None
    # by the day it was left: o1 left qualified on 03-04 after 2 days
    assert dur("qualified", "day", "2026-03-04T00:00:00Z") == pytest.approx(2.0)
    assert dur("demo", "day", "2026-03-10T00:00:00Z") == pytest.approx(6.5)


def test_open_pipeline_and_velocity(funnel):
    r = funnel
    # r1 open: o3 at proposal (no amount -> 0), o5 at prospecting (50); r2: o4 at meeting (300)
    assert value(r, "open_opportunities", "rep:r1", "all") == 2
    assert value(r, "pipeline_value", "rep:r1", "all") == 50.0
    assert value(r, "open_opportunities", "rep:r1", "all", dims=stage("proposal")) == 1
    assert value(r, "pipeline_value", "rep:r1", "all", dims=stage("proposal")) == 0.0
    assert value(r, "pipeline_value", "rep:r1", "all", dims=stage("prospecting")) == 50.0
    assert value(r, "open_opportunities", "rep:r1", "all", dims=stage("demo")) == 0
    assert value(r, "open_opportunities", "team:t1", "all") == 3
    assert value(r, "pipeline_value", "team:t1", "all") == 350.0
    assert value(r, "pipeline_value", "global", "all", dims=stage("meeting")) == 300.0
    # velocity = open × win_rate × deal size / cycle days (90d)
    # r1: 2 × 1/2 × 1200 / 8.5 = 141.176...
    assert value(r, "pipeline_velocity", "rep:r1", "all") == pytest.approx(2 * 0.5 * 1200 / 8.5)
    # team t1: 3 open, same rates -> 1800 / 8.5
    assert value(r, "pipeline_velocity", "team:t1", "all") == pytest.approx(3 * 0.5 * 1200 / 8.5)
    # r2 closed nothing: win_rate undefined
    assert value(r, "pipeline_velocity", "rep:r2", "all") is None


def test_velocity_rates_are_over_90_days():
    events = [
        created("a", "r1", "prospecting", "2026-01-01T00:00:00Z", 10),
        won("a", "r1", "2026-01-02T00:00:00Z", 100),  # more than 90 days before the newest day
        created("b", "r1", "prospecting", "2026-05-01T00:00:00Z", 10),
        won("b", "r1", "2026-05-05T00:00:00Z", 400),  # 4 days
        created("c", "r1", "prospecting", "2026-05-06T00:00:00Z", 10),  # open
        created("d", "r1", "prospecting", "2026-05-06T00:00:00Z", 10),
        lost("d", "r1", "2026-05-07T00:00:00Z"),
    ]
    r = compute_reference(events, directory=DIRECTORY)
    # 90d (2026-02-07 .. 05-07): won 1 (b), lost 1 -> win rate 1/2, deal 400, cycle 4 d; open 1
    # 1 × 0.5 × 400 / 4 = 50 per day
    assert value(r, "pipeline_velocity", "rep:r1", "all") == pytest.approx(50.0)
    # the `all` rates differ: 2 won 500 / cycle 5 d ...
    assert value(r, "win_rate", "rep:r1", "all") == pytest.approx(2 / 3)
    assert value(r, "sales_cycle_days", "rep:r1", "all") == pytest.approx(2.5)


def test_attribution_follows_the_rep_on_each_event():
    events = [
        created("o", "r1", "prospecting", "2026-03-02T00:00:00Z", 10),
        moved("o", "r3", "qualified", "2026-03-03T00:00:00Z"),  # r3 is in t2/south
        won("o", "r2", "2026-03-05T00:00:00Z", 100),
        created("q", "r1", "prospecting", "2026-03-02T00:00:00Z", 70),
        moved("q", "r3", "demo", "2026-03-04T00:00:00Z"),  # still open: now r3's
    ]
    r = compute_reference(events, directory=DIRECTORY)
    # an open opportunity counts for the rep of its latest event
    assert value(r, "open_opportunities", "rep:r3", "all", dims=stage("demo")) == 1
    assert value(r, "pipeline_value", "region:south", "all") == 70.0
    assert value(r, "open_opportunities", "rep:r1", "all") == 0
    # measured from creation: the creator r1 (o won, q open)
    assert value(r, "opportunities_created", "rep:r1", "month", MAR) == 2
    assert get(r, "lead_conversion", "rep:r1", "month", MAR) == Ratio(1, 2, 0.5)
    # r1 made both enter prospecting; both went on
    assert value(r, "stage_conversion", "rep:r1", "month", MAR, pair("prospecting", "qualified")) == 1.0
    assert value(r, "won_deals", "rep:r1", "month", MAR) == 0
    # r3 moved it into qualified (leaving prospecting after 1 day); the win counts as beyond
    assert value(r, "stage_conversion", "rep:r3", "month", MAR, pair("qualified", "meeting")) == 1.0
    assert value(r, "stage_duration_days", "rep:r3", "day", "2026-03-03T00:00:00Z", stage("prospecting")) == 1.0
    # ... and q out of prospecting after 2 days (qualified, meeting skipped): month = (1 + 2) / 2
    assert value(r, "stage_duration_days", "rep:r3", "month", MAR, stage("prospecting")) == 1.5
    assert value(r, "stage_duration_days", "rep:r3", "month", MAR, stage("meeting")) == 0.0
    assert value(r, "stage_conversion", "team:t2", "month", MAR, pair("qualified", "meeting")) == 1.0
    assert value(r, "stage_conversion", "team:t1", "month", MAR, pair("qualified", "meeting")) is None
    # r2 won it: 3 days after creation, 2 days in qualified
    assert value(r, "won_deals", "rep:r2", "month", MAR) == 1
    assert value(r, "bookings", "rep:r2", "month", MAR) == 100.0
    assert value(r, "sales_cycle_days", "rep:r2", "month", MAR) == 3.0
    assert value(r, "stage_duration_days", "rep:r2", "month", MAR, stage("qualified")) == 2.0
    assert value(r, "won_deals", "region:north", "month", MAR) == 1
    assert value(r, "won_deals", "region:south", "month", MAR) == 0


def test_lead_conversion_counts_at_creation_time():
    events = [
        created("o", "r1", "prospecting", "2026-01-20T00:00:00Z", 10),
        created("p", "r1", "prospecting", "2026-01-21T00:00:00Z", 10),
        won("o", "r1", "2026-02-03T00:00:00Z", 100),
    ]
    r = compute_reference(events, directory=DIRECTORY)
    # January: 2 created, o won later -> 1/2; February: nothing created -> None
    assert value(r, "lead_conversion", "rep:r1", "month", "2026-01-01T00:00:00Z") == 0.5
    assert value(r, "lead_conversion", "rep:r1", "month", "2026-02-01T00:00:00Z") is None
    assert value(r, "won_deals", "rep:r1", "month", "2026-01-01T00:00:00Z") == 0
    assert value(r, "won_deals", "rep:r1", "month", "2026-02-01T00:00:00Z") == 1
    # cycle 14 days
    assert value(r, "sales_cycle_days", "rep:r1", "month", "2026-02-01T00:00:00Z") == 14.0


# --- billing ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def billing():
    events = [
        # i1: 2×100 (cost 60) + 1×50 (no cost) = 250
        invoice("i1", "c1", "2026-03-02T10:00:00Z", [(2, 100, 60), (1, 50, None)], rep="r1"),
        spend("2026-03-03T00:00:00Z", 300, team="t1"),
        spend("2026-03-04T00:00:00Z", 100),  # no team: global only
        spend("2026-03-04T00:00:00Z", 50, team="t2"),
        invoice("i2", "c2", "2026-03-05T00:00:00Z", [(1, 100, 70)], rep="r1"),
        invoice("i4", "c3", "2026-03-06T00:00:00Z", [(4, 25, None)]),  # no rep: unassigned
        invoice("i3", "c1", "2026-03-20T00:00:00Z", [(3, 10, 10)], rep="r1"),
        credit("i1", "c1", "2026-04-02T00:00:00Z", 20),  # April
    ]
    return compute_reference(events, directory=DIRECTORY)


APR = "2026-04-01T00:00:00Z"


def test_revenue_orders_units_basket_margin(billing):
    r = billing
    # r1 in March: 250 + 100 + 30 = 380, 3 orders, 2+1+1+3 = 7 units
    assert get(r, "revenue", "rep:r1", "month", MAR).numerator == D(380)
    assert value(r, "orders", "rep:r1", "month", MAR) == 3
    assert value(r, "units_sold", "rep:r1", "month", MAR) == 7
    assert value(r, "average_basket", "rep:r1", "month", MAR) == pytest.approx(380 / 3)
    # costed lines: 200 (margin 80) + 100 (margin 30) + 30 (margin 0) -> 110/330
    assert get(r, "gross_margin", "rep:r1", "month", MAR) == Ratio(D(110), D(330), pytest.approx(1 / 3))
    # unassigned: i4 only, no line carries a cost
    assert value(r, "revenue", "team:unassigned", "month", MAR) == 100.0
    assert value(r, "units_sold", "region:unassigned", "month", MAR) == 4
    assert value(r, "gross_margin", "team:unassigned", "month", MAR) is None
    assert value(r, "revenue", "global", "month", MAR) == 480.0
    # April: only the credit note of i1, in i1's scope
    assert value(r, "revenue", "rep:r1", "month", APR) == -20.0
    assert value(r, "orders", "rep:r1", "month", APR) == 0
    assert value(r, "average_basket", "rep:r1", "month", APR) is None
    assert value(r, "revenue", "rep:r1", "all") == 360.0
    assert value(r, "revenue", "global", "all") == 460.0
    assert value(r, "revenue", "rep:r1", "day", "2026-03-02T00:00:00Z") == 250.0


def test_customers_cac_frequency_clv(billing):
    r = billing
    # r1 in March: new c1 (i1), c2 (i2); 3 orders for 2 distinct customers
    assert value(r, "new_customers", "rep:r1", "month", MAR) == 2
    assert get(r, "purchase_frequency", "rep:r1", "month", MAR) == Ratio(3, 2, 1.5)
    # spend never counts for a rep: 0 / 2
    assert value(r, "cac", "rep:r1", "month", MAR) == 0.0
    # clv = 380/3 × 3/2 × 1095/31 (March has 31 days) = 380 × 1095 / 62 = 6711.29
    assert value(r, "clv", "rep:r1", "month", MAR) == pytest.approx(380 / 3 * 1.5 * 1095 / 31)
    assert value(r, "ltv_to_cac", "rep:r1", "month", MAR) is None  # cac = 0
    # team t1: same invoices, 300 spend -> cac 150, ltv/cac = 6711.29/150
    assert value(r, "cac", "team:t1", "month", MAR) == 150.0
    assert value(r, "ltv_to_cac", "team:t1", "month", MAR) == pytest.approx(380 * 1095 / 62 / 150)
    assert value(r, "cac", "region:north", "month", MAR) == 150.0
    # t2: 50 spend, no new customer
    assert value(r, "cac", "team:t2", "month", MAR) is None
    assert value(r, "cac", "region:south", "month", MAR) is None
    assert value(r, "ltv_to_cac", "team:t2", "month", MAR) is None
    # global: 450 spend, 3 new customers; 4 orders / 3 customers; clv = 480 × 1095 / (3 × 31)
    assert value(r, "cac", "global", "month", MAR) == 150.0
    assert value(r, "purchase_frequency", "global", "month", MAR) == pytest.approx(4 / 3)
    assert value(r, "clv", "global", "month", MAR) == pytest.approx(480 * 1095 / 93)
    assert value(r, "ltv_to_cac", "global", "month", MAR) == pytest.approx(480 * 1095 / 93 / 150)
    # c1's second invoice (i3, 03-20) makes no new customer
    assert value(r, "new_customers", "rep:r1", "day", "2026-03-20T00:00:00Z") == 0
    # quarter clv: Q1 has 90 days -> 380 × 1095 / (2 × 90)
    assert value(r, "clv", "rep:r1", "quarter", Q1) == pytest.approx(380 * 1095 / 180)


def test_new_customer_is_the_first_invoice_by_event_time():
    events = [
        invoice("b", "c1", "2026-03-10T00:00:00Z", [(1, 10, None)], rep="r2"),
        invoice("a", "c1", "2026-02-10T00:00:00Z", [(1, 10, None)], rep="r1"),  # arrives late, earlier
    ]
    r = compute_reference(events, directory=DIRECTORY)
    assert value(r, "new_customers", "rep:r1", "month", "2026-02-01T00:00:00Z") == 1
    assert value(r, "new_customers", "rep:r2", "month", MAR) == 0
    assert value(r, "new_customers", "team:t1", "all") == 1


@pytest.fixture(scope="module")
def payments():
    events = [
        # i1 (r1) 100, paid 40 then 60 -> fully paid 03-05T12:00, 4.5 days
        invoice("i1", "c1", "2026-03-01T00:00:00Z", [(1, 100, None)], rep="r1", due="2026-03-10T00:00:00Z"),
        invoice("i4", "c2", "2026-03-01T00:00:00Z", [(1, 100, None)], rep="r2", due="2026-03-06T00:00:00Z"),
        invoice("i6", "c3", "2026-03-01T00:00:00Z", [(1, 40, None)], due="2026-03-03T00:00:00Z"),
        invoice("i2", "c1", "2026-03-02T00:00:00Z", [(2, 100, None)], rep="r1", due="2026-03-05T00:00:00Z"),
        invoice("i5", "c3", "2026-03-02T00:00:00Z", [(1, 50, None)], due="2026-03-20T00:00:00Z"),
        payment("i1", "c1", "2026-03-03T00:00:00Z", 40),
        payment("i2", "c1", "2026-03-04T00:00:00Z", 150),
        payment("i4", "c2", "2026-03-04T00:00:00Z", 30),  # partial
        credit("i6", "c3", "2026-03-04T00:00:00Z", 10),
        payment("i1", "c1", "2026-03-05T12:00:00Z", 60),
        payment("i4", "c9", "2026-03-05T00:00:00Z", 70),  # invoice of another customer: ignored
        # i2: 150 paid, a 50 credit note -> 150 ≥ 200 − 50: fully paid 03-06, 4 days
        credit("i2", "c1", "2026-03-06T00:00:00Z", 50),
        # i3: paid before it is issued -> fully paid at issue, 0 days
        payment("i3", "c2", "2026-03-07T00:00:00Z", 80),
        invoice("i3", "c2", "2026-03-08T00:00:00Z", [(1, 80, None)], rep="r1", due="2026-03-09T00:00:00Z"),
    ]
    return compute_reference(events, directory=DIRECTORY)


def test_days_to_pay(payments):
    r = payments
    # r1: i1 4.5 d, i2 4 d, i3 0 d -> 8.5 / 3
    got = get(r, "days_to_pay", "rep:r1", "month", MAR)
    assert (got.denominator, got.value) == (3, pytest.approx(8.5 / 3))
    # each counts on the day it became fully paid
    assert value(r, "days_to_pay", "rep:r1", "day", "2026-03-05T00:00:00Z") == 4.5
    assert value(r, "days_to_pay", "rep:r1", "day", "2026-03-06T00:00:00Z") == 4.0
    assert value(r, "days_to_pay", "rep:r1", "day", "2026-03-08T00:00:00Z") == 0.0
    # i1's partial payment day: nothing fully paid
    assert value(r, "days_to_pay", "rep:r1", "day", "2026-03-03T00:00:00Z") is None
    # r2's i4 is only partly paid
    assert value(r, "days_to_pay", "rep:r2", "month", MAR) is None
    assert value(r, "days_to_pay", "team:t1", "month", MAR) == pytest.approx(8.5 / 3)
    # revenue: r1 issued 100 + 200 + 80, credited 50
    assert value(r, "revenue", "rep:r1", "month", MAR) == 330.0


def test_overdue_receivables(payments):
    r = payments
    # now = 03-08: r1's invoices are all fully paid; i4 (due 03-06) owes 100 − 30 = 70
    assert value(r, "overdue_receivables", "rep:r1", "all") == 0.0
    assert value(r, "overdue_receivables", "rep:r2", "all") == 70.0
    assert value(r, "overdue_receivables", "team:t1", "all") == 70.0
    # unassigned: i6 (due 03-03) owes 40 − 10 = 30; i5 is not due before 03-20
    assert value(r, "overdue_receivables", "team:unassigned", "all") == 30.0
    assert value(r, "overdue_receivables", "global", "all") == 100.0
    # judged at an explicit `now`: on 03-04T12:00 only i6 (due 03-03) was overdue, and r1's i2 (due 03-05) not yet
    earlier = compute_reference([e for e in _payment_events_until("2026-03-04T12:00:00Z")], directory=DIRECTORY)
    assert value(earlier, "overdue_receivables", "global", "all") == 30.0


def _payment_events_until(when):
    return [
        invoice("j2", "c1", "2026-03-02T00:00:00Z", [(2, 100, None)], rep="r1", due="2026-03-05T00:00:00Z"),
        invoice("j6", "c3", "2026-03-01T00:00:00Z", [(1, 40, None)], due="2026-03-03T00:00:00Z"),
        credit("j6", "c3", "2026-03-04T00:00:00Z", 10),
        call("r1", when),
    ]


def test_payment_keys_follow_the_invoice(payments):
    r = payments
    # r2's partial payment makes 03-04 an active day for r2 (a value of None)
    assert value(r, "days_to_pay", "rep:r2", "day", "2026-03-04T00:00:00Z") is None
    # the ignored payment from c9 on 03-05 touches nobody
    assert ("days_to_pay", "rep:r2", "day", "2026-03-05T00:00:00Z", ()) not in r


def test_zero_total_invoice_is_paid_at_issue():
    r = compute_reference(
        [invoice("z", "c1", "2026-03-02T06:00:00Z", [(1, 0, 0)], rep="r1", due="2026-03-01T00:00:00Z")],
        directory=DIRECTORY,
    )
    assert get(r, "days_to_pay", "rep:r1", "month", MAR) == Ratio(0, 1, 0.0)
    assert value(r, "overdue_receivables", "rep:r1", "all") == 0.0
    assert value(r, "gross_margin", "rep:r1", "month", MAR) is None  # 0 / 0


# --- time zones, rolling windows -------------------------------------------------------------------


def test_time_zone_moves_days_and_period_starts():
    events = [
        call("r1", "2026-11-29T23:30:00Z"),  # Monday 30 Nov 00:30 in Paris, Sunday in UTC
        call("r1", "2026-11-30T23:30:00Z"),  # Tuesday 1 Dec 00:30 in Paris
    ]
    paris = compute_reference(events, directory=DIRECTORY, tz="Europe/Paris")
    # Paris is UTC+1 in winter: a local period starts at 23:00 UTC the day before
    assert value(paris, "calls", "rep:r1", "day", "2026-11-29T23:00:00Z") == 1
    assert value(paris, "calls", "rep:r1", "week", "2026-11-29T23:00:00Z") == 2
    assert value(paris, "calls", "rep:r1", "month", "2026-10-31T23:00:00Z") == 1
    assert value(paris, "calls", "rep:r1", "month", "2026-11-30T23:00:00Z") == 1
    # 1 Oct is still summer time (UTC+2)
    assert value(paris, "calls", "rep:r1", "quarter", "2026-09-30T22:00:00Z") == 2
    assert value(paris, "calls", "rep:r1", "year", "2025-12-31T23:00:00Z") == 2
    utc = compute_reference(events, directory=DIRECTORY)
    assert value(utc, "calls", "rep:r1", "day", "2026-11-29T00:00:00Z") == 1
    assert value(utc, "calls", "rep:r1", "week", "2026-11-23T00:00:00Z") == 1  # Sunday closes the week
    assert value(utc, "calls", "rep:r1", "week", "2026-11-30T00:00:00Z") == 1
    assert value(utc, "calls", "rep:r1", "month", "2026-11-01T00:00:00Z") == 2


def test_rolling_windows_in_a_time_zone():
    events = [
        call("r1", "2026-03-04T12:00:00Z"),  # day 03-04 in UTC and in Paris
        call("r1", "2026-03-10T23:30:00Z"),  # newest: 03-10 in UTC, 03-11 00:30 in Paris
    ]
    utc = compute_reference(events, directory=DIRECTORY)
    paris = compute_reference(events, directory=DIRECTORY, tz="Europe/Paris")
    assert value(utc, "calls", "rep:r1", "7d") == 2  # 03-04 .. 03-10
    assert value(paris, "calls", "rep:r1", "7d") == 1  # 03-05 .. 03-11


def test_rolling_windows_and_window_lengths():
    events = [
        call("r2", "2026-02-01T10:00:00Z"),  # first event
        call("r1", "2026-03-01T10:00:00Z"),
        call("r1", "2026-03-03T23:59:59Z"),  # just outside 7d
        call("r1", "2026-03-04T00:00:00Z"),  # first day of 7d
        invoice("i", "c1", "2026-03-09T10:00:00Z", [(1, 70, None)], rep="r1"),
        call("r1", "2026-03-10T08:00:00Z"),  # newest
    ]
    r = compute_reference(events, directory=DIRECTORY)
    # 7d = 03-04..03-10, 30d = 02-09..03-10, 90d = 2025-12-11..03-10
    assert value(r, "calls", "rep:r1", "7d") == 2
    assert value(r, "calls", "rep:r1", "30d") == 4
    assert value(r, "calls", "rep:r2", "30d") == 0  # idle in the window but still emitted
    assert value(r, "calls", "rep:r2", "90d") == 1
    assert value(r, "calls", "team:t1", "90d") == 5
    # clv only for windows of a month or longer: none over 7d, a week or a day
    assert ("clv", "rep:r1", "7d", "", ()) not in r
    assert ("ltv_to_cac", "rep:r1", "7d", "", ()) not in r
    assert ("clv", "rep:r1", "week", "2026-03-09T00:00:00Z", ()) not in r
    assert ("clv", "rep:r1", "day", "2026-03-09T00:00:00Z", ()) not in r
    # clv over 30d: 70/1 × 1/1 × 1095/30
    assert value(r, "clv", "rep:r1", "30d") == pytest.approx(70 * 1095 / 30)
    # `all`: from the first invoice (03-09) to the end of 03-10 = 2 days, not from 02-01
    assert value(r, "clv", "global", "all") == pytest.approx(70 * 1095 / 2)
    # calendar: March 2026 has 31 days, 2026 has 365
    assert value(r, "clv", "rep:r1", "month", MAR) == pytest.approx(70 * 1095 / 31)
    assert value(r, "clv", "rep:r1", "year", Q1) == pytest.approx(70 * 1095 / 365)
    # a custom lifetime
    r365 = compute_reference(events, directory=DIRECTORY, customer_lifetime_days=365)
    assert value(r365, "clv", "rep:r1", "30d") == pytest.approx(70 * 365 / 30)
    # without idle scopes, r2 has no 7d/30d keys but keeps 90d
    only_active = compute_reference(events, directory=DIRECTORY, rolling_for_idle_scopes=False)
    assert ("calls", "rep:r2", "7d", "", ()) not in only_active
    assert ("calls", "rep:r2", "30d", "", ()) not in only_active
    assert value(only_active, "calls", "rep:r2", "90d") == 1
    assert value(only_active, "calls", "rep:r2", "all") == 1


# --- change against the previous period ---------------------------------------------------------------


def test_growth_price_and_volume_effects():
    events = [
        # January: 10 × 10 + 5 × 20 = 200 gross, 15 units, avg price 13.33
        invoice("a", "c1", "2026-01-10T00:00:00Z", [(10, 10, None)], rep="r1"),
        invoice("b", "c2", "2026-01-20T00:00:00Z", [(5, 20, None)], rep="r1"),
        # February: 20 × 12 = 240 gross, 20 units, avg 12; a 20 credit note -> revenue 220
        invoice("c", "c1", "2026-02-10T00:00:00Z", [(20, 12, None)], rep="r1"),
        credit("c", "c1", "2026-02-11T00:00:00Z", 20),
    ]
    r = compute_reference(events, directory=DIRECTORY)
    feb, jan = "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"
    # growth = (220 − 200) / 200
    assert value(r, "revenue_growth", "rep:r1", "month", feb) == pytest.approx(0.1)
    # price effect = (12 − 200/15) × 20 = −26.67; volume effect = (20 − 15) × 200/15 = 66.67
    assert value(r, "price_effect", "rep:r1", "month", feb) == pytest.approx((12 - 200 / 15) * 20)
    assert value(r, "volume_effect", "rep:r1", "month", feb) == pytest.approx(5 * 200 / 15)
    # together they explain the gross change 240 − 200
    assert value(r, "price_effect", "rep:r1", "month", feb) + value(
        r, "volume_effect", "rep:r1", "month", feb
    ) == pytest.approx(40)
    # January against an empty December: undefined
    assert value(r, "revenue_growth", "rep:r1", "month", jan) is None
    assert value(r, "price_effect", "rep:r1", "month", jan) is None
    assert value(r, "volume_effect", "rep:r1", "month", jan) is None
    assert value(r, "revenue_growth", "rep:r1", "quarter", Q1) is None
    # day 02-11 (credit note only) against 02-10: revenue −20 vs 240; 0 units -> no price effect
    assert value(r, "revenue_growth", "rep:r1", "day", "2026-02-11T00:00:00Z") == pytest.approx(-260 / 240)
    assert value(r, "price_effect", "rep:r1", "day", "2026-02-11T00:00:00Z") is None
    assert value(r, "volume_effect", "rep:r1", "day", "2026-02-11T00:00:00Z") == pytest.approx(-240)
    # ISO weeks: 02-09 (Monday) week against 02-02 week (empty)
    assert value(r, "revenue_growth", "rep:r1", "week", "2026-02-09T00:00:00Z") is None


def test_growth_after_a_month_of_credit_notes_only(billing):
    r = billing
    # April (−20, 0 units) against March (380, 7 units)
    assert value(r, "revenue_growth", "rep:r1", "month", APR) == pytest.approx(-400 / 380)
    assert value(r, "price_effect", "rep:r1", "month", APR) is None
    assert value(r, "volume_effect", "rep:r1", "month", APR) == pytest.approx(-380)
    # Q2 against Q1, year has no previous
    assert value(r, "revenue_growth", "rep:r1", "quarter", APR) == pytest.approx(-400 / 380)
    assert value(r, "revenue_growth", "rep:r1", "year", Q1) is None


def test_validity_is_judged_in_event_time_order_whatever_the_arrival_order():
    # o7 won on 03-11 for 5000; a second win ten hours later (9999) is invalid, and a
    # stage change dated before the creation never counts, whichever arrives first.
    events = [
        created("o7", "r1", "prospecting", "2026-03-10T09:00:00Z", 100),
        won("o7", "r1", "2026-03-11T09:00:00Z", 5000),
        won("o7", "r1", "2026-03-11T19:00:00Z", 9999),
        moved("o7", "r1", "demo", "2026-03-09T09:00:00Z"),
    ]
    for order in itertools.permutations(events):
        r = compute_reference(list(order), directory=DIRECTORY)
        assert value(r, "won_deals", "rep:r1", "month", MAR) == 1
        assert value(r, "bookings", "rep:r1", "month", MAR) == 5000.0
        # 03-11T09 − 03-10T09 = 1 day
        assert value(r, "sales_cycle_days", "rep:r1", "month", MAR) == 1.0
        # It never entered qualified: the move to demo dated before the creation is not counted.
        assert get(r, "stage_conversion", "rep:r1", "month", MAR, pair("qualified", "meeting")).denominator == 0
