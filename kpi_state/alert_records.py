"""Alert records in Alertmanager's alert shape, with the fingerprint, related KPIs and a one-line reading."""

from __future__ import annotations

from typing import Any

from kpi_state.calendar import iso_utc
from kpi_state.catalogue import CATALOGUE

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
# Which families explain a red KPI: the ones that feed it (activity → efficiency → results → profitability).
BENEATH = {
    "activity": (),
    "efficiency": ("activity",),
    "results": ("activity", "efficiency"),
    "pipeline": ("activity", "efficiency"),
    "profitability": ("activity", "efficiency", "results"),
}
READINGS = {
    (True, False): "work more: activity is red",
    (False, True): "work better: efficiency is red",
    (True, True): "work more and work better: activity and efficiency are red",
    (False, False): "look outside the team: market, pricing, product",
}


def fnv1a64(data: bytes, h: int = _FNV_OFFSET) -> int:
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's label fingerprint: FNV-1a 64 over sorted names and values, each followed by 0xFF."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        h = fnv1a64(name.encode() + b"\xff" + labels[name].encode() + b"\xff", h)
    return f"{h:016x}"


def alert_key(kpi: str, scope: str, window: str) -> str:
    return f"{kpi}|{scope}|{window}"


def episode_id(kpi: str, scope: str, window: str, starts_at: float) -> str:
    """The same episode gets the same id in every run: it is built from event time only."""
    return f"{alert_key(kpi, scope, window)}|{iso_utc(starts_at)}"


def notification_id(episode: str, status: str) -> str:
    """The idempotency key of one record (firing or resolved) of one episode."""
    return f"{fnv1a64(f'{episode}|{status}'.encode()):016x}"


def reading(red_kpi: str, related: list[dict[str, Any]]) -> str:
    """What the red KPI and the KPIs beneath it say: work more, work better, both, or look outside."""
    red_families = {CATALOGUE[r["kpi"]].family for r in related if r["status"] == "red"}
    red_families.add(CATALOGUE[red_kpi].family)
    return READINGS[("activity" in red_families, "efficiency" in red_families)]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no value"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "days":
        return f"{value:.1f} days"
    return f"{value:,.0f}"


def build_record(
    *, status: str, kpi: str, scope: str, window: str, severity: str, direction: str,
    starts_at: float, ends_at: float | None, value: float | None, threshold: float,
    summary: str, runbook: str, related: list[dict[str, Any]],
) -> dict[str, Any]:
    """One record of kpi.alerts (key `{kpi}|{scope}|{window}`)."""
    labels = {"alertname": "KpiRed", "kpi": kpi, "scope": scope, "window": window, "severity": severity}
    unit = CATALOGUE[kpi].unit
    side = "below" if direction == "higher" else "above"
    if status == "firing":
        description = (f"{kpi} of {scope} over {window} is {_fmt(value, unit)}, "
                       f"red {side} {_fmt(threshold, unit)}.")
    else:
        description = (f"{kpi} of {scope} over {window} is back to {_fmt(value, unit)} "
                       f"(red {side} {_fmt(threshold, unit)}).")
    episode = episode_id(kpi, scope, window, starts_at)
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{summary} ({scope}, {window})", "description": description,
                        "runbook": runbook.strip()},
        "startsAt": iso_utc(starts_at),
        "endsAt": iso_utc(ends_at) if ends_at is not None else None,
        "fingerprint": fingerprint(labels),
        "value": value,
        "threshold": threshold,
        "context": {"related": related, "reading": reading(kpi, related)},
        "episode": episode,
        "id": notification_id(episode, status),
    }
