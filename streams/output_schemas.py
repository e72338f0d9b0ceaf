"""JSON Schemas of the records the pipeline writes: kpi.values (also Redis and /kpis) and kpi.alerts."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from kpi_state.alert_records import READINGS
from kpi_state.records import KpiValue
from kpi_state.thresholds import STATUS_CODES

Status = Literal[tuple(STATUS_CODES)]  # type: ignore[valid-type]
Reading = Literal[tuple(READINGS.values())]  # type: ignore[valid-type]


# kpi_state.alert_records builds the alert record as a plain dict (its JSON is built once and
# stored in the outbox); these structs describe it for the schema, and the tests convert
# built records into them and back unchanged, so the two cannot drift apart. Unknown fields
# stay allowed: the project may add fields, and a consumer's validation must not break then.
class AlertLabels(msgspec.Struct):
    alertname: Literal["KpiRed"]
    kpi: str
    scope: str
    window: str
    severity: str


class AlertAnnotations(msgspec.Struct):
    summary: str
    description: str
    runbook: str


class RelatedKpi(msgspec.Struct):
    """A KPI of the families beneath the red one, in its first judged window."""

    kpi: str
    window: str
    value: float | None
    status: Status


class AlertContext(msgspec.Struct):
    related: list[RelatedKpi]
    reading: Reading


class AlertRecord(msgspec.Struct):
    """One record of kpi.alerts, key `{kpi}|{scope}|{window}`: a transition of one episode."""

    status: Literal["firing", "resolved"]
    labels: AlertLabels
    annotations: AlertAnnotations
    startsAt: str  # noqa: N815 - Alertmanager's names
    endsAt: str | None  # noqa: N815
    fingerprint: str
    value: float | None
    threshold: float
    context: AlertContext
    episode: str
    id: str


OUTPUTS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "kpi.values": (KpiValue, "a KPI value record (kpi.values, Redis kpi:value, GET /kpis)"),
    "kpi.alerts": (AlertRecord, "an alert record (kpi.alerts, Redis kpi:alerts, GET /alerts, notifiers)"),
}


def output_schemas(dialect: str) -> dict[str, dict[str, Any]]:
    """One JSON Schema per written record, keyed by the topic that carries it."""
    return {name: {"$schema": dialect, "title": title, **msgspec.json.schema(struct)}
            for name, (struct, title) in OUTPUTS.items()}
