"""The KPI catalogue: each KPI's family, unit and how Prometheus names it."""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("activity", "efficiency", "results", "profitability", "pipeline")


@dataclass(frozen=True)
class KpiSpec:
    name: str
    family: str
    unit: str
    help: str

    @property
    def metric_name(self) -> str:
        # Prometheus convention: unit suffix when there is a unit; counts have none.
        suffix = {"count": "", "ratio": "_ratio", "days": "_days"}.get(self.unit, f"_{self.unit}")
        base = self.name.removesuffix("_days")
        return f"sales_kpi_{base}{suffix}"


ACTIVITY_KPIS: dict[str, KpiSpec] = {
    spec.name: spec
    for spec in (
        KpiSpec("calls", "activity", "count", "Calls logged in the window"),
        KpiSpec("emails", "activity", "count", "Emails sent in the window"),
        KpiSpec("meetings_booked", "activity", "count", "Meetings booked in the window"),
        KpiSpec("demos", "activity", "count", "Demos completed in the window"),
        KpiSpec("prospects_contacted", "activity", "count", "Prospects contacted in the window"),
        KpiSpec("opportunities_created", "activity", "count", "Opportunities created in the window"),
    )
}

# Which event type feeds which activity count.
ACTIVITY_EVENT_KPI: dict[str, str] = {
    "call.logged": "calls",
    "email.sent": "emails",
    "meeting.booked": "meetings_booked",
    "demo.completed": "demos",
    "prospect.contacted": "prospects_contacted",
    "opportunity.created": "opportunities_created",
}

CATALOGUE: dict[str, KpiSpec] = {**ACTIVITY_KPIS}
