"""The KPI catalogue: each KPI's family, unit, dims and how Prometheus names it."""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("activity", "efficiency", "results", "profitability", "pipeline")


@dataclass(frozen=True)
class KpiSpec:
    name: str
    family: str
    unit: str  # count, ratio, days, money
    help: str
    dims: tuple[str, ...] = ()
    calendar_only: bool = False  # growth and effects compare with the previous period
    all_only: bool = False  # snapshots and velocity exist for window `all` only

    @property
    def metric_name(self) -> str:
        """The Prometheus family name: base units, the unit once as a suffix, no other unit word.

        Days become `_seconds` (values scaled by `metric_scale`), 0–1 fractions `_ratio`;
        counts, money (reporting currency, named in the help) and unbounded factors carry
        no suffix. Names that would read badly under those rules are spelled in METRIC_BASES.
        """
        base, fraction = METRIC_BASES.get(self.name, (self.name, True))
        if self.unit == "days":
            return f"sales_kpi_{base.removesuffix('_days')}_seconds"
        if self.unit == "ratio" and fraction:
            return f"sales_kpi_{base}_ratio"
        return f"sales_kpi_{base}"

    @property
    def metric_scale(self) -> float:
        """Factor from the KPI's unit to the metric's (days → seconds)."""
        return 86400.0 if self.unit == "days" else 1.0


def _spec(name: str, family: str, unit: str, help: str, **kw: object) -> KpiSpec:
    return KpiSpec(name, family, unit, help, **kw)  # type: ignore[arg-type]


_SPECS = (
    _spec("calls", "activity", "count", "Calls logged"),
    _spec("emails", "activity", "count", "Emails sent"),
    _spec("meetings_booked", "activity", "count", "Meetings booked"),
    _spec("demos", "activity", "count", "Demos completed"),
    _spec("prospects_contacted", "activity", "count", "Prospects contacted"),
    _spec("opportunities_created", "activity", "count", "Opportunities created"),
    _spec("meeting_rate", "efficiency", "ratio", "Meetings booked per call"),
    _spec("win_rate", "efficiency", "ratio", "Won / (won + lost) over opportunities closed"),
    _spec("lead_conversion", "efficiency", "ratio", "Of opportunities created, the fraction won so far"),
    _spec("stage_conversion", "efficiency", "ratio",
          "Of opportunities that entered a stage, the fraction that reached the next", dims=("from", "to")),
    _spec("sales_cycle_days", "efficiency", "days", "Mean time from creation to win"),
    _spec("stage_duration_days", "efficiency", "days", "Mean time spent in a stage", dims=("stage",)),
    _spec("bookings", "results", "money", "Sum of won amounts (reporting currency)"),
    _spec("won_deals", "results", "count", "Deals won"),
    _spec("average_deal_size", "results", "money", "Bookings per won deal"),
    _spec("revenue", "results", "money", "Invoiced minus credit notes (reporting currency)"),
    _spec("orders", "results", "count", "Invoices issued"),
    _spec("units_sold", "results", "count", "Units on invoice lines"),
    _spec("average_basket", "results", "money", "Revenue per order"),
    _spec("revenue_growth", "results", "ratio", "Revenue change against the previous period", calendar_only=True),
    _spec("price_effect", "results", "money", "Revenue change explained by price", calendar_only=True),
    _spec("volume_effect", "results", "money", "Revenue change explained by volume", calendar_only=True),
    _spec("objective_attainment", "results", "ratio", "KPI value / its objective for the scope and window",
          dims=("kpi",)),
    _spec("gross_margin", "profitability", "ratio", "Margin over invoice lines that carry a cost"),
    _spec("new_customers", "profitability", "count", "Customers whose first invoice falls in the window"),
    _spec("cac", "profitability", "money", "Spend per new customer"),
    _spec("purchase_frequency", "profitability", "ratio", "Orders per distinct customer invoiced"),
    _spec("clv", "profitability", "money", "Basket × frequency × lifetime / window length"),
    _spec("ltv_to_cac", "profitability", "ratio", "CLV / CAC"),
    _spec("days_to_pay", "profitability", "days", "Mean time from issue to full payment"),
    _spec("overdue_receivables", "profitability", "money", "Outstanding on invoices past due", all_only=True),
    _spec("open_opportunities", "pipeline", "count", "Open opportunities now", dims=("stage",), all_only=True),
    _spec("pipeline_value", "pipeline", "money", "Expected value of open opportunities", dims=("stage",), all_only=True),
    _spec("pipeline_velocity", "pipeline", "money",
          "Open × win rate × deal size / cycle days, rates over 90d (per day)", all_only=True),
)

CATALOGUE: dict[str, KpiSpec] = {spec.name: spec for spec in _SPECS}
ACTIVITY_KPIS = {name: spec for name, spec in CATALOGUE.items() if spec.family == "activity"}

# Which event type feeds which activity count (opportunities_created comes from opportunities).
ACTIVITY_EVENT_KPI: dict[str, str] = {
    "call.logged": "calls",
    "email.sent": "emails",
    "meeting.booked": "meetings_booked",
    "demo.completed": "demos",
    "prospect.contacted": "prospects_contacted",
}

# Prometheus base names where the KPI name does not fit the conventions, and whether a
# ratio KPI is a 0–1 fraction (`_ratio`) or an unbounded factor (no suffix).
METRIC_BASES: dict[str, tuple[str, bool]] = {
    "meeting_rate": ("meetings_per_call", False),  # can exceed 1: meetings booked without a call
    "win_rate": ("win", True),
    "sales_cycle_days": ("sales_cycle_duration", True),
    "days_to_pay": ("payment_delay", True),  # `days` is a unit word even inside the name
    "revenue_growth": ("revenue_growth", False),  # negative or above 1
    "purchase_frequency": ("purchase_frequency", False),
    "ltv_to_cac": ("ltv_to_cac", False),
    "objective_attainment": ("objective_attainment", False),  # 1.2 = 120 % of the objective
}
