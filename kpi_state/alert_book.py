"""Every alert of the scopes one rollup owns: evaluated as KPIs change, with an outbox of records to send.

The outbox makes "exactly one firing and one resolved record per episode" hold across crashes:
a transition is stored (with the alert state, in the rollup's state record) before its record
is sent, and removed only once the send is acknowledged. After a crash, entries still in the
outbox are compared with what kpi.alerts already holds, by their deterministic id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from kpi_state.alert_records import BENEATH, alert_key, build_record
from kpi_state.alerts import AlertState, Observation, Transition, step
from kpi_state.catalogue import CATALOGUE
from kpi_state.codec import SCOPE_ALERTS, Outgoing, ScopeAlerts
from kpi_state.directory import UNASSIGNED
from kpi_state.formulas import KpiResult
from kpi_state.kpi_view import KpiView
from kpi_state.thresholds import KpiRule, Thresholds


_json = msgspec.json.Encoder()
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
        # What each window's judgement reads: the rules' KPIs, and those shown beside an alert.
        self.kpis_of = {w: frozenset(r.kpi for r in self.rules if w in r.windows) for w in self.windows}

    # --- evaluation -----------------------------------------------------------------------
    def evaluate_day(self, view: KpiView, scopes: Iterable[str], day: date, ts: float) -> int:
        """Judge every alerted window of `scopes` as of the end of `day` (event time `ts`).

        Days are judged once every entity partition has passed them, from totals that leave
        later days out: the same events give the same alerts however fast they are processed.
        Returns the number of new outbox entries.
        """
        if not self.rules:
            return 0
        added = 0
        stamp = day.isoformat()
        for scope in sorted(set(scopes) | set(self.scopes)):
            if scope.endswith(f":{UNASSIGNED}"):
                continue  # a catch-all bucket (billing without a rep), nobody's team: no alerts
            alerts = self.scopes.get(scope)
            if alerts is not None and alerts.day >= stamp:
                continue  # judged before a restart
            added += self._judge_scope(view, scope, day, ts)
            alerts = self.scopes.get(scope)
            if alerts is not None and (alerts.states or alerts.outbox or alerts.firing):
                alerts.day = stamp
                self.dirty.add(scope)
        return added

    def _judge_scope(self, view: KpiView, scope: str, day: date, ts: float) -> int:
        added = 0
        lineage = self.lineage(scope)
        for window in self.windows:
            start, results = view.results_as_of(scope, window, day, self.kpis_of[window])
            by_kpi = {r.kpi: r for r in results if not r.dims}
            for rule in self.rules:
                if window not in rule.windows:
                    continue
                result = by_kpi.get(rule.kpi)
                covered = view.covered(window, day, rule.kpi)
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
                    added += self._emit(view, scope, rule.kpi, window, rule, transition, day)
        return added

    def _emit(self, view: KpiView, scope: str, kpi: str, window: str, rule: KpiRule, t: Transition, day: date) -> int:
        bounds = rule.bounds_for(self.lineage(scope))
        assert bounds is not None
        record = build_record(
            status=t.status, kpi=kpi, scope=scope, window=window, severity=bounds.severity,
            direction=bounds.direction, starts_at=t.starts_at, ends_at=t.ends_at, value=t.value,
            threshold=t.threshold, summary=rule.summary, runbook=rule.runbook,
            related=self.related(view, scope, kpi, day),
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

    def related(self, view: KpiView, scope: str, kpi: str, day: date) -> list[dict[str, Any]]:
        """The scope's KPIs from the families beneath `kpi`, each in its first judged window, as of `day`."""
        families = BENEATH.get(CATALOGUE[kpi].family, ())
        out: list[dict[str, Any]] = []
        cache: dict[str, dict[str, KpiResult]] = {}
        for rule in self.rules:
            if CATALOGUE[rule.kpi].family not in families:
                continue
            window = rule.windows[0]
            if window not in cache:
                cache[window] = {r.kpi: r for r in view.results_as_of(scope, window, day, self.kpis_of[window])[1]
                                 if not r.dims}
            result = cache[window].get(rule.kpi)
            if result is None:
                continue
            out.append({"kpi": rule.kpi, "window": window, "value": _num(result.value),
                        "status": view.status(result, scope, window, day)})
        return out

    # --- outbox and persistence -----------------------------------------------------------
    def outbox(self) -> list[Outgoing]:
        return [entry for scope in sorted(self.scopes) for entry in self.scopes[scope].outbox]

    def mark_published(self, ids: set[str]) -> None:
        """kpi.alerts holds these records: never send them there again."""
        for scope, alerts in self.scopes.items():
            for index, entry in enumerate(alerts.outbox):
                if entry.id in ids and not entry.published:
                    alerts.outbox[index] = msgspec.structs.replace(entry, published=True)
                    self.dirty.add(scope)

    def delivered(self, ids: set[str]) -> None:
        """Published and handed to every notifier: the entries leave the outbox."""
        for scope, alerts in self.scopes.items():
            kept = [entry for entry in alerts.outbox if entry.id not in ids or not entry.published]
            if len(kept) != len(alerts.outbox):
                alerts.outbox = kept
                self.dirty.add(scope)

    def take_dirty(self) -> list[tuple[str, bytes]]:
        out = [(scope, SCOPE_ALERTS.encode(self.scopes[scope])) for scope in sorted(self.dirty) if scope in self.scopes]
        self.dirty.clear()
        return out

    def restore(self, scope: str, raw: bytes) -> None:
        self.scopes[scope] = SCOPE_ALERTS.decode(raw)

    def active(self) -> list[bytes]:
        """Firing records of every owned scope (what /alerts and Alertmanager re-sends show)."""
        return [body for _, body in self.active_by_key()]

    def active_by_key(self) -> list[tuple[str, bytes]]:
        """(kpi.alerts key, firing record) of every owned scope (Redis's active hash)."""
        out = []
        for scope in sorted(self.scopes):
            for slot, body in self.scopes[scope].firing.items():
                kpi, window = slot.split("|")
                out.append((alert_key(kpi, scope, window), body))
        return out
