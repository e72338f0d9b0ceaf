"""The alert state machine of one (kpi, scope, window kind): ok → pending → firing → resolved, on event time."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from kpi_state.thresholds import Bounds


class AlertState(msgspec.Struct, omit_defaults=True):
    """What an alert remembers between observations; persisted with the rollup step's state."""

    phase: str = "ok"  # ok | pending | firing
    since: float = 0.0  # pending: when red began; firing: the episode's startsAt (event time)
    period: str = ""  # start of the calendar period last judged ("" for rolling windows, all)
    value: float | None = None  # last value and sample seen (ticks re-judge them)
    sample: float | None = None


class Observation(NamedTuple):
    """A KPI's value in the current period of its window kind, at event time `ts`."""

    period: str
    value: float | None
    sample: float | None
    ts: float


class Transition(NamedTuple):
    status: str  # firing | resolved
    starts_at: float
    ends_at: float | None
    value: float | None
    threshold: float


def judge(bounds: Bounds, value: float | None, sample: float | None) -> str:
    """red, clear (past the bound by the margin), between (neither), or unknown (no value, small sample)."""
    if value is None or (sample if sample is not None else value) < bounds.min_sample:
        return "unknown"
    if bounds.is_red(value):
        return "red"
    return "clear" if bounds.is_clear(value) else "between"


def step(state: AlertState, obs: Observation, bounds: Bounds) -> tuple[AlertState, Transition | None]:
    """Judge one observation. Pure: the same observations always give the same transitions."""
    if obs.period < state.period:
        # A late event changed a past period: its record is republished, but alerts
        # follow the current period only.
        return state, None
    seen = msgspec.structs.replace(state, period=obs.period, value=obs.value, sample=obs.sample)
    verdict = judge(bounds, obs.value, obs.sample)
    if state.phase == "ok":
        if verdict != "red":
            return seen, None
        seen = msgspec.structs.replace(seen, phase="pending", since=obs.ts)
        return _maybe_fire(seen, obs.ts, bounds)
    if state.phase == "pending":
        if verdict in ("clear", "between"):
            return msgspec.structs.replace(seen, phase="ok", since=0.0), None
        if verdict == "unknown":
            return seen, None  # too little data neither fires nor calls it off
        return _maybe_fire(seen, obs.ts, bounds)
    # firing: only a value past the bound by the margin resolves (hysteresis).
    if verdict == "clear":
        done = Transition("resolved", state.since, obs.ts, obs.value, bounds.red)
        return msgspec.structs.replace(seen, phase="ok", since=0.0), done
    return seen, None


def tick(state: AlertState, ts: float, bounds: Bounds) -> tuple[AlertState, Transition | None]:
    """Event time moved on without a new value: a pending alert may have waited long enough."""
    if state.phase != "pending":
        return state, None
    if judge(bounds, state.value, state.sample) != "red":
        return state, None
    return _maybe_fire(state, ts, bounds)


def _maybe_fire(state: AlertState, ts: float, bounds: Bounds) -> tuple[AlertState, Transition | None]:
    if ts - state.since < bounds.pending_s:
        return state, None
    # startsAt is when red began, as Prometheus sends an alert's active-since time.
    fired = msgspec.structs.replace(state, phase="firing")
    return fired, Transition("firing", state.since, None, state.value, bounds.red)
