"""Opportunity lifecycle: cumulative funnel, stage durations, won/lost, refusals, storage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from kpi_state.codec import OPPORTUNITY
from kpi_state.contributions import Contribution
from kpi_state.events import (
    Event,
    OpportunityCreated,
    OpportunityLost,
    OpportunityStageChanged,
    OpportunityWon,
)
from kpi_state.opportunity import OpportunityState

STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


MON = at("2026-11-23T10:00:00+00:00")
TUE = at("2026-11-24T10:00:00+00:00")
WED_18 = at("2026-11-25T18:00:00+00:00")
THU_16 = at("2026-11-26T16:00:00+00:00")


def created(ts: float, stage: str = "prospecting", rep: str = "r-1", amount: str | None = None) -> Event:
    money = {} if amount is None else dict(amount=Decimal(amount), amount_original=Decimal(amount), currency="EUR")
    return OpportunityCreated(event_id=f"c{ts}", ts=ts, opportunity_id="o-1", rep_id=rep, stage=stage, **money)


def moved(ts: float, to: str, rep: str = "r-1", source: str | None = None) -> Event:
    return OpportunityStageChanged(event_id=f"m{ts}{to}", ts=ts, opportunity_id="o-1", rep_id=rep,
                                   to_stage=to, from_stage=source)


def won(ts: float, amount: str = "1000", rep: str = "r-1") -> Event:
    return OpportunityWon(event_id=f"w{ts}", ts=ts, opportunity_id="o-1", rep_id=rep,
                          amount=Decimal(amount), amount_original=Decimal(amount), currency="EUR")


def lost(ts: float, rep: str = "r-1") -> Event:
    return OpportunityLost(event_id=f"l{ts}", ts=ts, opportunity_id="o-1", rep_id=rep, reason="price")


def build(events: list[Event]) -> OpportunityState:
    """Apply `events` in order; every one of them must be accepted."""
    state, reason = OpportunityState.start(events[0], STAGES)
    assert reason is None and state is not None
    for event in events[1:]:
        assert state.apply(event, STAGES) is None, event
    return state


def cells(contributions: list[Contribution], component: str) -> dict[tuple, object]:
    """{(rep or attribution id, day, dims as dict items): value} of one component."""
    out: dict[tuple, object] = {}
    for c in contributions:
        if c.component == component:
            key = (c.attribution[1], c.day, *(value for _, value in c.dims))
            assert key not in out, f"two contributions for {key}"
            out[key] = c.value
    return out


M, T, W, H = "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"

COMPONENT_CASES = [
    # (id, events, component, expected {(rep, day, *dim values): value})
    ("created once at creation", [created(MON)], "opportunities_created", {("r-1", M): 1}),
    ("creation stage and all earlier entered at creation",
     [created(MON, "meeting")], "stage_entered",
     {("r-1", M, "prospecting"): 1, ("r-1", M, "qualified"): 1, ("r-1", M, "meeting"): 1}),
    ("skipped stages entered at the move, by its rep",
     [created(MON, "qualified"), moved(TUE, "demo", rep="r-2")], "stage_entered",
     {("r-1", M, "prospecting"): 1, ("r-1", M, "qualified"): 1,
      ("r-2", T, "meeting"): 1, ("r-2", T, "demo"): 1}),
    ("advance counted at the entry of `from`, once the next stage is reached",
     [created(MON, "qualified"), moved(TUE, "demo", rep="r-2")], "stage_advanced",
     {("r-1", M, "prospecting", "qualified"): 1, ("r-1", M, "qualified", "meeting"): 1,
      ("r-2", T, "meeting", "demo"): 1}),
    ("won passes every remaining stage; no advance out of the last one",
     [created(MON, "proposal"), won(TUE, rep="r-2")], "stage_advanced",
     {("r-1", M, "prospecting", "qualified"): 1, ("r-1", M, "qualified", "meeting"): 1,
      ("r-1", M, "meeting", "demo"): 1, ("r-1", M, "demo", "proposal"): 1,
      ("r-1", M, "proposal", "negotiation"): 1}),
    ("won does not walk through the stages after the current one",
     [created(MON, "demo"), won(TUE, rep="r-2")], "stage_entered",
     {("r-1", M, "prospecting"): 1, ("r-1", M, "qualified"): 1, ("r-1", M, "meeting"): 1,
      ("r-1", M, "demo"): 1}),
    ("won is beyond every stage: the current one advances to the next",
     [created(MON, "demo"), won(TUE, rep="r-2")], "stage_advanced",
     {("r-1", M, "prospecting", "qualified"): 1, ("r-1", M, "qualified", "meeting"): 1,
      ("r-1", M, "meeting", "demo"): 1, ("r-1", M, "demo", "proposal"): 1}),
    ("lost does not advance its stage",
     [created(MON, "qualified"), lost(TUE)], "stage_advanced",
     {("r-1", M, "prospecting", "qualified"): 1}),
    ("time in stage, skipped stages 0 days, left by the mover",
     # qualified: Mon 10:00 → Wed 18:00 = 2 days 8 h = 2.333333333 days (1e-9 quantum)
     [created(MON, "qualified"), moved(WED_18, "demo", rep="r-2")], "stage_days_sum",
     {("r-1", M, "prospecting"): Decimal(0), ("r-2", W, "qualified"): Decimal("2.333333333"),
      ("r-2", W, "meeting"): Decimal(0)}),
    ("stage left once per stage passed, at the leaving day",
     [created(MON, "qualified"), moved(WED_18, "demo", rep="r-2")], "stage_left",
     {("r-1", M, "prospecting"): 1, ("r-2", W, "qualified"): 1, ("r-2", W, "meeting"): 1}),
    ("lost leaves the current stage",
     # meeting: Tue 10:00 → Thu 16:00 = 2.25 days
     [created(MON), moved(TUE, "meeting"), lost(THU_16, rep="r-3")], "stage_days_sum",
     {("r-1", T, "prospecting"): Decimal(1), ("r-1", T, "qualified"): Decimal(0),
      ("r-3", H, "meeting"): Decimal("2.25")}),
    ("won leaves the current stage; stages it never reached get no 0-day visit",
     [created(MON, "proposal"), won(THU_16)], "stage_days_sum",
     {("r-1", M, "prospecting"): Decimal(0), ("r-1", M, "qualified"): Decimal(0),
      ("r-1", M, "meeting"): Decimal(0), ("r-1", M, "demo"): Decimal(0),
      ("r-1", H, "proposal"): Decimal("3.25")}),
    ("won at the won day by the winning rep", [created(MON), won(THU_16, rep="r-2")], "won", {("r-2", H): 1}),
    ("bookings are the won amount", [created(MON, amount="500"), won(THU_16, "1234.50", rep="r-2")],
     "bookings", {("r-2", H): Decimal("1234.50")}),
    ("cycle in exact days: Mon 10:00 → Thu 16:00", [created(MON), won(THU_16, rep="r-2")],
     "cycle_days_sum", {("r-2", H): Decimal("3.25")}),
    ("created_won counts on the creation day, for the creating rep",
     [created(MON), moved(TUE, "demo", rep="r-2"), won(THU_16, rep="r-2")], "created_won", {("r-1", M): 1}),
    ("no created_won for a lost deal", [created(MON), lost(TUE)], "created_won", {}),
    ("lost at the lost day by its rep", [created(MON), lost(TUE, rep="r-2")], "lost", {("r-2", T): 1}),
    ("no won, bookings or cycle for a lost deal", [created(MON), lost(TUE)], "bookings", {}),
    ("open: one in the current stage, held by the rep who moved it there",
     [created(MON, amount="250"), moved(TUE, "demo", rep="r-2")], "open_opps", {("r-2", "", "demo"): 1}),
    ("open value is the expected amount",
     [created(MON, amount="250.75"), moved(TUE, "demo", rep="r-2")], "open_value",
     {("r-2", "", "demo"): Decimal("250.75")}),
    ("open value 0 without an amount", [created(MON, "meeting")], "open_value", {("r-1", "", "meeting"): Decimal(0)}),
    ("closed deals leave the open snapshot", [created(MON, amount="10"), won(TUE)], "open_opps", {}),
    ("closed deals leave the open value", [created(MON, amount="10"), lost(TUE)], "open_value", {}),
]


@pytest.mark.parametrize(("events", "component", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in COMPONENT_CASES])
def test_components(events: list[Event], component: str, expected: dict) -> None:
    assert cells(build(events).contributions("UTC"), component) == expected


@pytest.mark.parametrize(("tz", "day"), [
    ("UTC", "2026-11-27"),
    ("Europe/Paris", "2026-11-28"),  # 23:30Z is 00:30 the next day in Paris
    ("America/New_York", "2026-11-27"),
    ("Asia/Tokyo", "2026-11-28"),
])
def test_days_are_local_dates_in_the_configured_zone(tz: str, day: str) -> None:
    state = build([created(at("2026-11-27T23:30:00+00:00"), amount="5")])
    assert cells(state.contributions(tz), "opportunities_created") == {("r-1", day): 1}


def test_stage_duration_across_a_dst_change_is_elapsed_time() -> None:
    # Paris leaves summer time on 2026-10-25: midnight to midnight local is 25 hours.
    start, end = at("2026-10-25T00:00:00+02:00"), at("2026-10-26T00:00:00+01:00")
    state = build([created(start, "qualified"), moved(end, "meeting")])
    expected = {("r-1", "2026-10-25", "prospecting"): Decimal(0),
                ("r-1", "2026-10-26", "qualified"): Decimal("1.041666667")}  # 25 h / 24 h
    assert cells(state.contributions("Europe/Paris"), "stage_days_sum") == expected


REFUSED = [
    # (id, accepted history, refused event, reason)
    ("reopened after won", [created(MON), won(TUE)], moved(WED_18, "demo"), "invalid_transition"),
    ("reopened after lost", [created(MON), lost(TUE)], moved(WED_18, "demo"), "invalid_transition"),
    ("won twice", [created(MON), won(TUE)], won(WED_18), "invalid_transition"),
    ("lost after won", [created(MON), won(TUE)], lost(WED_18), "invalid_transition"),
    ("won after lost", [created(MON), lost(TUE)], won(WED_18), "invalid_transition"),
    ("lost twice", [created(MON), lost(TUE)], lost(WED_18), "invalid_transition"),
    ("moved to the same stage", [created(MON, "demo")], moved(TUE, "demo"), "invalid_transition"),
    ("moved backwards", [created(MON), moved(TUE, "demo")], moved(WED_18, "meeting"), "invalid_transition"),
    ("moved to an unknown stage", [created(MON)], moved(TUE, "closing"), "unknown_stage"),
    ("created twice", [created(MON)], created(TUE), "invalid_transition"),
    ("moved before its current stage was entered",
     [created(MON), moved(TUE, "meeting")], moved(MON, "demo"), "invalid_transition"),
    ("won before its creation", [created(TUE)], won(MON), "invalid_transition"),
    ("lost before its creation", [created(TUE)], lost(MON), "invalid_transition"),
]


@pytest.mark.parametrize(("history", "event", "reason"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_refused_events_leave_the_state_unchanged(history: list[Event], event: Event, reason: str) -> None:
    state = build(history)
    before = OPPORTUNITY.encode(state)
    assert state.apply(event, STAGES) == reason
    assert OPPORTUNITY.encode(state) == before


@pytest.mark.parametrize(("first", "reason"), [
    pytest.param(moved(MON, "demo"), "invalid_transition", id="stage change before created"),
    pytest.param(won(MON), "invalid_transition", id="won before created"),
    pytest.param(lost(MON), "invalid_transition", id="lost before created"),
    pytest.param(created(MON, "won"), "unknown_stage", id="created at an unknown stage"),
])
def test_only_created_starts_an_opportunity(first: Event, reason: str) -> None:
    assert OpportunityState.start(first, STAGES) == (None, reason)


def test_a_move_at_the_same_instant_is_accepted() -> None:
    state = build([created(MON), moved(MON, "qualified")])
    assert cells(state.contributions("UTC"), "stage_days_sum") == {("r-1", M, "prospecting"): Decimal(0)}


def test_from_stage_is_informative_only() -> None:
    # The stage held is authoritative: a stale `from_stage` still moves the deal forward.
    state = build([created(MON), moved(TUE, "demo", source="meeting")])
    assert state.stage == "demo"


def test_history_survives_a_change_of_stage_configuration() -> None:
    state = build([created(MON, "qualified"), moved(TUE, "demo")])
    before = state.contributions("UTC")
    assert state.apply(moved(WED_18, "proposal"), ("qualified", "proposal")) == "invalid_transition"
    assert state.contributions("UTC") == before


def test_contributions_are_a_pure_function_of_the_state() -> None:
    state = build([created(MON, amount="10"), moved(TUE, "demo", rep="r-2")])
    first = state.contributions("UTC")
    assert state.contributions("UTC") == first
    assert OPPORTUNITY.decode(OPPORTUNITY.encode(state)).contributions("UTC") == first


@pytest.mark.parametrize("events", [
    pytest.param([created(MON, amount="1234.5600")], id="open with a precise amount"),
    pytest.param([created(MON), moved(TUE, "demo", rep="r-2"), won(THU_16, "0.10")], id="won"),
    pytest.param([created(MON + 0.125, "meeting"), lost(TUE + 0.5)], id="lost, fractional seconds"),
])
def test_round_trip_is_exact(events: list[Event]) -> None:
    state = build(events)
    restored = OPPORTUNITY.decode(OPPORTUNITY.encode(state))
    assert restored == state
    # Decimals keep their exponent, not only their value.
    assert str(restored.amount) == str(state.amount)
    assert str(restored.won_amount) == str(state.won_amount)
