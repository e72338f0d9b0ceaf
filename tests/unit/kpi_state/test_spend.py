"""Spend per team: attribution, local days (quarter-hour zones included), refusals, storage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from kpi_state.codec import SPEND
from kpi_state.events import Event, SpendRecorded
from kpi_state.spend import SpendState


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def spend(when: str, amount: str, team: str | None = "t-1", original: str | None = None) -> Event:
    return SpendRecorded(event_id=f"s{when}{amount}", ts=at(when), amount=Decimal(amount),
                         amount_original=Decimal(original or amount), currency="USD" if original else "EUR",
                         category="marketing", team_id=team)


def build(events: list[Event]) -> SpendState:
    state, reason = SpendState.start(events[0])
    assert reason is None and state is not None
    for event in events[1:]:
        assert state.apply(event) is None, event
    return state


def cells(state: SpendState, tz: str) -> dict[tuple, Decimal]:
    out = {}
    for c in state.contributions(tz):
        assert c.component == "spend" and c.dims == () and c.distinct is None
        assert (c.attribution, c.day) not in out
        out[(c.attribution, c.day)] = c.value
    return out


T1 = ("team", "t-1")
GLOBAL = ("global", "")

CASES = [
    # (id, events, tz, expected {(attribution, day): Σ amount})
    ("a team's spend counts for the team", [spend("2026-11-23T10:00:00+00:00", "100")], "UTC",
     {(T1, "2026-11-23"): Decimal(100)}),
    ("spend without a team is global only", [spend("2026-11-23T10:00:00+00:00", "100", team=None)], "UTC",
     {(GLOBAL, "2026-11-23"): Decimal(100)}),
    ("summed per local day",
     [spend("2026-11-23T10:00:00+00:00", "100.50"), spend("2026-11-23T10:05:00+00:00", "0.25"),
      spend("2026-11-23T23:59:59+00:00", "1"), spend("2026-11-24T00:00:00+00:00", "7")], "UTC",
     {(T1, "2026-11-23"): Decimal("101.75"), (T1, "2026-11-24"): Decimal(7)}),
    ("the zone decides the day",
     [spend("2026-11-23T10:00:00+00:00", "100.50"), spend("2026-11-23T23:30:00+00:00", "7")], "Europe/Paris",
     {(T1, "2026-11-23"): Decimal("100.50"), (T1, "2026-11-24"): Decimal(7)}),
    ("a quarter-hour zone: 23:59 and 00:01 in Kathmandu (+05:45)",
     [spend("2026-11-23T18:14:00+00:00", "3"), spend("2026-11-23T18:16:00+00:00", "4")], "Asia/Kathmandu",
     {(T1, "2026-11-23"): Decimal(3), (T1, "2026-11-24"): Decimal(4)}),
    ("currency already converted: the reporting amount",
     [spend("2026-11-23T10:00:00+00:00", "92.00", original="100.00")], "UTC",
     {(T1, "2026-11-23"): Decimal("92.00")}),
]


@pytest.mark.parametrize(("events", "tz", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_spend_per_local_day(events: list[Event], tz: str, expected: dict) -> None:
    assert cells(build(events), tz) == expected


@pytest.mark.parametrize("event", [
    pytest.param(spend("2026-11-24T10:00:00+00:00", "5", team="t-2"), id="another team"),
    pytest.param(spend("2026-11-24T10:00:00+00:00", "5", team=None), id="no team on a team's entity"),
])
def test_spend_routed_to_another_entity_is_refused(event: Event) -> None:
    state = build([spend("2026-11-23T10:00:00+00:00", "100")])
    before = SPEND.encode(state)
    assert state.apply(event) == "invalid_transition"
    assert SPEND.encode(state) == before


def test_round_trip_is_exact_and_zone_free() -> None:
    state = build([spend("2026-11-23T10:00:00+00:00", "0.10"), spend("2026-11-23T23:30:00+00:00", "12.3400")])
    restored = SPEND.decode(SPEND.encode(state))
    assert restored == state
    assert cells(restored, "Europe/Paris") == {(T1, "2026-11-23"): Decimal("0.10"),
                                               (T1, "2026-11-24"): Decimal("12.3400")}
    assert str(cells(restored, "UTC")[(T1, "2026-11-23")]) == "12.4400"
