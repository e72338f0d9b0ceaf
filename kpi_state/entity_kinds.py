"""How each kind of entity starts, applies an event, lists its contributions and is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kpi_state.activity import decode_activity, encode_activity
from kpi_state.customer import CustomerState, decode_customer, encode_customer
from kpi_state.opportunity import OpportunityState, decode_opportunity, encode_opportunity
from kpi_state.spend import SpendState, decode_spend, encode_spend


@dataclass(frozen=True)
class Kind:
    """One kind's operations, with one signature for all (stages and `now` where they matter)."""

    start: Callable[[Any, tuple[str, ...]], tuple[Any, str | None]]
    apply: Callable[[Any, Any, tuple[str, ...]], str | None]
    contributions: Callable[[Any, str, float], list]
    next_change: Callable[[Any, float], float | None]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def _never(state: Any, now: float) -> float | None:
    return None


def _applied_by_engine(*args: Any) -> Any:
    raise AssertionError("activity counts are applied by the partition engine directly")


KINDS: dict[str, Kind] = {
    "rep": Kind(
        _applied_by_engine, _applied_by_engine, _applied_by_engine, _never,
        encode_activity, decode_activity,
    ),
    "opp": Kind(
        start=lambda event, stages: OpportunityState.start(event, stages),
        apply=lambda state, event, stages: state.apply(event, stages),
        contributions=lambda state, tz, now: state.contributions(tz),
        next_change=_never,
        encode=encode_opportunity,
        decode=decode_opportunity,
    ),
    "cust": Kind(
        start=lambda event, stages: CustomerState.start(event),
        apply=lambda state, event, stages: state.apply(event),
        contributions=lambda state, tz, now: state.contributions(tz, now),
        next_change=lambda state, now: state.next_change(now),
        encode=encode_customer,
        decode=decode_customer,
    ),
    "spend": Kind(
        start=lambda event, stages: SpendState.start(event),
        apply=lambda state, event, stages: state.apply(event),
        contributions=lambda state, tz, now: state.contributions(tz),
        next_change=_never,
        encode=encode_spend,
        decode=decode_spend,
    ),
}


def kind_of(key: bytes) -> str:
    """`opp:…` → `opp`."""
    return key.split(b":", 1)[0].decode()
