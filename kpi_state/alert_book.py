"""Every alert of the scopes one rollup owns: evaluated as KPIs change, with an outbox of records to send.

The outbox makes "exactly one firing and one resolved record per episode" hold across crashes:
a transition is stored (with the alert state, in the rollup's state record) before its record
is sent, and removed only once the send is acknowledged. After a crash, entries still in the
outbox are compared with what kpi.alerts already holds, by their deterministic id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import msgspec

from kpi_state.alert_records import BENEATH, alert_key, build_record
from kpi_state.alerts import AlertState, Observation, Transition, step, tick
from kpi_state.catalogue import CATALOGUE
from kpi_state.formulas import KpiResult
from kpi_state.kpi_view import KpiView
from kpi_state.thresholds import KpiRule, Thresholds


class Outgoing(msgspec.Struct):
    """One alert record waiting to be sent (or to be found already sent after a crash)."""

    id: str
    key: str  # `{kpi}|{scope}|{window}`, the kpi.alerts key
    record: bytes  # the JSON body, built once so a re-send is byte-identical


class ScopeAlerts(msgspec.Struct, omit_defaults=True):
    """The persisted alert state of one scope: states by `{kpi}|{window}` and its outbox."""

    states: dict[str, AlertState] = {}
    outbox: list[Outgoing] = []
    firing: dict[str, bytes] = {}  # `{kpi}|{window}` → the firing record (active alerts)


_json = msgspec.json.Encoder()
_codec_encoder = msgspec.msgpack.Encoder()
_codec_decoder = msgspec.msgpack.Decoder(ScopeAlerts)


def encode_scope(alerts: ScopeAlerts) -> bytes:
    return _codec_encoder.encode(alerts)


def decode_scope(raw: bytes) -> ScopeAlerts:
    return _codec_decoder.decode(raw)


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class AlertBook:
    """Alert states by scope; `evaluate` judges the current period of every alerted window."""

    def __init__(self, thresholds: Thresholds, lineage: Callable[[str], tuple[str, ...]]) -> None:
        self.thresholds = thresholds
        self.lineage = lineage
        self.scopes: dict[str, ScopeAlerts] = {}
        self.dirty: set[str] = set()  # scopes whose stored record must be rewritten
        self.rules = [r for r in thresholds.kpis.values() if r.bounds is not None and not CATALOGUE[r.kpi].dims]
        self.windows = sorted({w for r in self.rules for w in r.windows})

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, view: KpiView, scopes: Iterable[str], ts: float | None) -> int:
        """Judge `scopes` at event time `ts`, tick the other pending alerts; returns new outbox entries."""
        if ts is None or not self.rules:
            return 0
        added = 0
        judged = set()
        for scope in sorted(set(scopes)):
            judged.add(scope)
            added += self._judge_scope(view, scope, ts)
        for scope, alerts in self.scopes.items():
            if scope in judged:
                continue
            for slot, state in list(alerts.states.items()):
                if state.phase == "pending":
                    kpi, window = slot.split("|", 1)
                    rule = self.thresholds.kpis[kpi]
                    new, transition = tick(state, ts, rule.bounds_for(self.lineage(scope)))  # type: ignore[arg-type]
                    if new != state:
                        alerts.states[slot] = new
                        self.dirty.add(scope)
                    if transition is not None:
                        added += self._emit(view, scope, kpi, window, rule, transition)
        return added

    def _judge_scope(self, view: KpiView, scope: str, ts: float) -> int:
        added = 0
        lineage = self.lineage(scope)
        for window in self.windows:
            start = view.rollup.current_start(window)
            results = {r.kpi: r for r in view.results((scope, window, start)) if not r.dims}
            covered = view.covered(window)
            for rule in self.rules:
                if window not in rule.windows:
                    continue
                result = results.get(rule.kpi)
                value = _num(result.value) if result is not None and covered else None
                sample = None
                if result is not None:
                    sample = _num(result.denominator if result.denominator is not None else result.value)
                alerts = self.scopes.get(scope)
                slot = f"{rule.kpi}|{window}"
                state = alerts.states.get(slot, AlertState()) if alerts is not None else AlertState()
                new, transition = step(state, Observation(start, value, sample, ts), rule.bounds_for(lineage))  # type: ignore[arg-type]
                if new == state and transition is None:
                    continue
                if new.phase == "ok":
                    # An alert at rest remembers nothing: only pending and firing ones are stored.
                    if alerts is not None and alerts.states.pop(slot, None) is not None:
                        self.dirty.add(scope)
                else:
                    self.scopes.setdefault(scope, ScopeAlerts()).states[slot] = new
                    self.dirty.add(scope)
                if transition is not None:
                    added += self._emit(view, scope, rule.kpi, window, rule, transition)
        return added

    def _emit(self, view: KpiView, scope: str, kpi: str, window: str, rule: KpiRule, t: Transition) -> int:
        bounds = rule.bounds_for(self.lineage(scope))
        assert bounds is not None
        record = build_record(
            status=t.status, kpi=kpi, scope=scope, window=window, severity=bounds.severity,
            direction=bounds.direction, starts_at=t.starts_at, ends_at=t.ends_at, value=t.value,
            threshold=t.threshold, summary=rule.summary, runbook=rule.runbook,
            related=self.related(view, scope, kpi),
        )
        alerts = self.scopes.setdefault(scope, ScopeAlerts())
        body = _json.encode(record)
        alerts.outbox.append(Outgoing(record["id"], alert_key(kpi, scope, window), body))
        slot = f"{kpi}|{window}"
        if t.status == "firing":
            alerts.firing[slot] = body
        else:
            alerts.firing.pop(slot, None)
        self.dirty.add(scope)
        return 1

    def related(self, view: KpiView, scope: str, kpi: str) -> list[dict[str, Any]]:
        """The scope's KPIs from the families beneath `kpi`, each in its first judged window."""
        families = BENEATH.get(CATALOGUE[kpi].family, ())
        out: list[dict[str, Any]] = []
        cache: dict[str, dict[str, KpiResult]] = {}
        for rule in self.rules:
            if CATALOGUE[rule.kpi].family not in families:
                continue
            window = rule.windows[0]
            if window not in cache:
                start = view.rollup.current_start(window)
                cache[window] = {r.kpi: r for r in view.results((scope, window, start)) if not r.dims}
            result = cache[window].get(rule.kpi)
            if result is None:
                continue
            out.append({"kpi": rule.kpi, "window": window, "value": _num(result.value),
                        "status": view.status(result, scope, window)})
        return out

    # --- outbox and persistence -----------------------------------------------------------
    def outbox(self) -> list[Outgoing]:
        return [entry for scope in sorted(self.scopes) for entry in self.scopes[scope].outbox]

    def sent(self, ids: set[str]) -> None:
        """Entries acknowledged by kpi.alerts leave the outbox (their scopes must be rewritten)."""
        for scope, alerts in self.scopes.items():
            kept = [entry for entry in alerts.outbox if entry.id not in ids]
            if len(kept) != len(alerts.outbox):
                alerts.outbox = kept
                self.dirty.add(scope)

    def take_dirty(self) -> list[tuple[str, bytes]]:
        out = [(scope, encode_scope(self.scopes[scope])) for scope in sorted(self.dirty) if scope in self.scopes]
        self.dirty.clear()
        return out

    def restore(self, scope: str, raw: bytes) -> None:
        self.scopes[scope] = decode_scope(raw)

    def active(self) -> list[bytes]:
        """Firing records of every owned scope (what /alerts and Alertmanager re-sends show)."""
        return [body for scope in sorted(self.scopes) for body in self.scopes[scope].firing.values()]
