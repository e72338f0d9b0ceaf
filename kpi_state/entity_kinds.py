"""How each kind of entity starts, judges an event, lists its contributions, settles and is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kpi_state.codec import ACTIVITY, CUSTOMER, OPPORTUNITY_HISTORY, SPEND
from kpi_state.customer import CustomerState
from kpi_state.entity import Judged, Withdrawn
from kpi_state.events import Event
from kpi_state.opportunity_history import OpportunityHistory
from kpi_state.spend import SpendState

Stages = tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    """One kind's operations, with one signature for all (stages and `now` where they matter)."""

    new: Callable[[Event], Any]
    add: Callable[[Any, Event, bytes | None, Stages], Judged]
    contributions: Callable[[Any, str, float, Stages], list]
    next_change: Callable[[Any, float], float | None]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    held: Callable[[Any], int] = lambda state: 0
    # When the entity next has something to settle at the lateness horizon, and settling it.
    next_expiry: Callable[[Any, float], float | None] = lambda state, lateness: None
    expire: Callable[[Any, float, Stages], list[Withdrawn]] = lambda state, cutoff, stages: []
    # Contributions a function of the state alone (not of `now`): derived again before and
    # after each change instead of being kept per entity.
    stateless_cells: bool = False
    # Nothing left to settle and cells of the state alone (implies `stateless_cells`): the
    # engine may keep the entity encoded until its next event.
    settled: Callable[[Any], bool] = lambda state: False
    # Whether the state itself recognises an event id as one of its own (no digest needed).
    knows: Callable[[Any, str], bool] | None = None


def _never(state: Any, now: float) -> float | None:
    return None


def _applied_by_engine(*args: Any) -> Any:
    raise AssertionError("activity counts are applied by the partition engine directly")


def _spend_add(state: SpendState, event: Event, raw: bytes | None, stages: Stages) -> Judged:
    return Judged(state.apply(event))


KINDS: dict[str, Kind] = {
    "rep": Kind(
        _applied_by_engine, _applied_by_engine, _applied_by_engine, _never,
        ACTIVITY.encode, ACTIVITY.decode,
    ),
    "opp": Kind(
        new=OpportunityHistory.of,
        add=lambda state, event, raw, stages: state.add(event, raw, stages),
        contributions=lambda state, tz, now, stages: state.contributions(tz, stages),
        next_change=_never,
        encode=OPPORTUNITY_HISTORY.encode,
        decode=OPPORTUNITY_HISTORY.decode,
        held=lambda state: state.held,
        next_expiry=lambda state, lateness: state.next_expiry(lateness),
        expire=lambda state, cutoff, stages: state.expire(cutoff, stages),
        stateless_cells=True,
        settled=lambda state: state.settled,
        knows=lambda state, event_id: state.knows(event_id),
    ),
    "cust": Kind(
        new=CustomerState.of,
        add=lambda state, event, raw, stages: state.add(event, raw),
        contributions=lambda state, tz, now, stages: state.contributions(tz, now),
        next_change=lambda state, now: state.next_change(now),
        encode=CUSTOMER.encode,
        decode=CUSTOMER.decode,
        held=lambda state: state.held,
        next_expiry=lambda state, lateness: state.next_expiry(lateness),
        expire=lambda state, cutoff, stages: state.expire(cutoff),
    ),
    "spend": Kind(
        new=lambda event: SpendState(team_id=getattr(event, "team_id", None) or None),
        add=_spend_add,
        contributions=lambda state, tz, now, stages: state.contributions(tz),
        next_change=_never,
        encode=SPEND.encode,
        decode=SPEND.decode,
    ),
}


def kind_of(key: bytes) -> str:
    """`opp:…` → `opp`."""
    return key.split(b":", 1)[0].decode()
