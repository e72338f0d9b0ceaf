"""Panel builders for KPI boards: PromQL from the catalogue, colours from the thresholds file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exporters.dashboards.sdk import (
    PromQueryFormat,
    Threshold,
    ThresholdsMode,
    bargauge,
    cogbuilder,
    common,
    common_builders,
    dashboard,
    prometheus,
    stat,
    table,
    timeseries,
)
from kpi_state.catalogue import CATALOGUE, KpiSpec

DATASOURCE_UID = "kpi-prometheus"  # fixed in deploy/grafana/provisioning/datasources
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
NEUTRAL = "blue"
# Unbounded factors that still read best as a percentage (a growth of 0.12 is +12 %).
PERCENT_FACTORS = frozenset({"revenue_growth", "objective_attainment"})
GREEN, AMBER, RED = "green", "#FF9830", "red"


def default_window(spec: KpiSpec, thresholds: "Thresholds") -> str:
    """The window a KPI panel shows: the first one its thresholds judge, so colours mean the same as alerts."""
    windows = thresholds.windows(spec.name)
    if windows:
        return windows[0]
    if spec.all_only:
        return "all"
    if spec.calendar_only:
        return "month"
    return "30d"


@dataclass(frozen=True)
class Thresholds:
    """The parts of the thresholds file (contract §5) a board needs: windows and bounds per KPI."""

    kpis: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> "Thresholds":
        return cls(dict(document.get("kpis") or {}))

    def windows(self, kpi: str) -> list[str]:
        return list(self.kpis.get(kpi, {}).get("windows") or [])

    def steps(self, kpi: str, scope: str = "") -> list[Threshold] | None:
        """Grafana steps for one KPI judged in `scope` (its override, else the KPI's own), in metric units.

        higher is better: red below `red`, amber below `amber`, green above;
        lower is better: green below `amber`, amber below `red`, red above.
        """
        entry = self.kpis.get(kpi)
        if not entry or entry.get("red") is None:
            return None
        bounds = {"red": entry["red"], "amber": entry.get("amber")}
        for override in entry.get("overrides") or ():
            if scope and override.get("scope") == scope:
                bounds.update({k: override[k] for k in ("red", "amber") if k in override})
        scale = CATALOGUE[kpi].metric_scale if kpi in CATALOGUE else 1.0
        red = float(bounds["red"]) * scale
        amber = None if bounds["amber"] is None else float(bounds["amber"]) * scale
        if entry.get("direction", "higher") == "higher":
            steps = [Threshold(value=None, color=RED), Threshold(value=red, color=AMBER if amber else GREEN)]
            if amber is not None:
                steps.append(Threshold(value=amber, color=GREEN))
        else:
            steps = [Threshold(value=None, color=GREEN)]
            if amber is not None:
                steps.append(Threshold(value=amber, color=AMBER))
            steps.append(Threshold(value=red, color=RED))
        return steps


@dataclass(frozen=True)
class Scope:
    """Which scope a query reads: a kind and an id (a literal or a `$variable`), or every id of the kind."""

    kind: str
    ident: str | None = None

    @property
    def key(self) -> str:
        """The thresholds-file spelling (`global`, `rep:r-1`), empty for variables and whole kinds."""
        if self.kind == "global":
            return "global"
        if self.ident and not self.ident.startswith("$"):
            return f"{self.kind}:{self.ident}"
        return ""


GLOBAL = Scope("global", "global")


def kpi_query(kpi: str, scope: Scope, window: str, *, by: tuple[str, ...] = (), **dims: str) -> str:
    """PromQL for one KPI: `max` over workers (each scope lives on one worker, but a query never
    double counts if two briefly expose it), grouped by `by`. A KPI with dims shows its total
    (`stage=""`) unless the dims are asked for by `by` or given."""
    spec = CATALOGUE[kpi]
    matchers = [f'scope_kind="{scope.kind}"']
    if scope.ident is not None:
        matchers.append(f'scope_id="{scope.ident}"')
    matchers.append(f'window="{window}"')
    split = any(name in by or name in dims for name in spec.dims)
    for name in spec.dims:
        if name in dims:
            matchers.append(f'{name}="{dims[name]}"')
        elif name in by:
            matchers.append(f'{name}!=""')  # the per-dim series, not the total beside them
        elif not split:
            matchers.append(f'{name}=""')  # the total over every dim value
    selector = f"{spec.metric_name}{{{', '.join(matchers)}}}"
    grouping = f" by ({', '.join(by)})" if by else ""
    return f"max{grouping} ({selector})"


def grafana_unit(spec: KpiSpec, currency: str) -> str:
    if spec.unit == "days":
        return "s"
    if spec.unit == "money":
        return f"currency{currency}"
    if spec.metric_name.endswith("_ratio") or spec.name in PERCENT_FACTORS:
        return "percentunit"
    return "short"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False,
           as_table: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    if as_table:
        query = query.format(PromQueryFormat.TABLE)
    return query.instant() if instant else query.range()


def latest() -> common_builders.ReduceDataOptions:
    """Stats and bars show the newest value of each series, not a reduction over the time range."""
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def colours(panel: Any, steps: list[Threshold] | None) -> Any:
    steps = steps or [Threshold(value=None, color=NEUTRAL)]
    return panel.thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))


class Board:
    """Lays out one dashboard's panels left to right in rows, numbering them."""

    def __init__(self, builder: dashboard.Dashboard, thresholds: Thresholds, currency: str) -> None:
        self.builder = builder
        self.thresholds = thresholds
        self.currency = currency
        self._next_id = 1

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def row(self, title: str) -> None:
        self.builder.with_row(dashboard.Row(title).id(self._id()))

    def add(self, panel: cogbuilder.Builder[Any]) -> None:
        self.builder.with_panel(panel.id(self._id()).datasource(DATASOURCE))

    def kpi_stat(self, kpi: str, scope: Scope, window: str | None = None, width: int = 4, **dims: str) -> None:
        """One KPI's current value, coloured by its bounds for that scope."""
        spec = CATALOGUE[kpi]
        window = window or default_window(spec, self.thresholds)
        panel = (
            stat.Panel().title(f"{_title(spec)} ({window})").description(spec.help)
            .unit(grafana_unit(spec, self.currency)).height(4).span(width).reduce_options(latest())
            .with_target(target(kpi_query(kpi, scope, window, **dims), instant=True))
        )
        self.add(colours(panel, self.thresholds.steps(kpi, scope.key)))

    def kpi_bars(self, kpi: str, scope: Scope, by: tuple[str, ...], legend: str, *,
                 title: str = "", window: str | None = None, width: int = 8) -> None:
        """One KPI split by a label (reps side by side, stages of the funnel), one bar each."""
        spec = CATALOGUE[kpi]
        window = window or default_window(spec, self.thresholds)
        panel = (
            bargauge.Panel().title(f"{title or _title(spec)} ({window})").description(spec.help)
            .unit(grafana_unit(spec, self.currency)).height(8).span(width).reduce_options(latest())
            .with_target(target(kpi_query(kpi, scope, window, by=by), legend, instant=True))
        )
        if spec.metric_name.endswith("_ratio"):
            panel = panel.min(0).max(1)
        self.add(colours(panel, self.thresholds.steps(kpi, scope.key)))

    def kpi_trend(self, title: str, kpis: list[str], scope: Scope, window: str, *, unit: str = "",
                  width: int = 12) -> None:
        """How KPIs of one window moved over the dashboard's time range."""
        panel = timeseries.Panel().title(f"{title} ({window})").height(8).span(width)
        for index, kpi in enumerate(kpis):
            panel = panel.with_target(target(kpi_query(kpi, scope, window), _title(CATALOGUE[kpi]), chr(65 + index)))
        spec = CATALOGUE[kpis[0]]
        panel = panel.unit(unit or grafana_unit(spec, self.currency))
        steps = self.thresholds.steps(kpis[0], scope.key) if len(kpis) == 1 else None
        self.add(colours(panel, steps))

    def health(self, title: str, exprs: list[tuple[str, str]], *, unit: str = "short", width: int = 12,
               kind: str = "timeseries", description: str = "") -> None:
        """A pipeline-health panel (not a KPI: no thresholds file entry)."""
        panel: Any = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel}[kind]()
        panel = panel.title(title).unit(unit).height(8 if kind != "stat" else 4).span(width)
        if description:
            panel = panel.description(description)
        if kind == "stat":
            panel = panel.reduce_options(latest())
        for index, (expr, legend) in enumerate(exprs):
            panel = panel.with_target(target(expr, legend, chr(65 + index), instant=kind != "timeseries",
                                             as_table=kind == "table"))
        self.add(colours(panel, None))


def _title(spec: KpiSpec) -> str:
    titles = {"cac": "CAC", "clv": "CLV", "ltv_to_cac": "LTV:CAC", "days_to_pay": "Days to pay"}
    if spec.name in titles:
        return titles[spec.name]
    return spec.name.removesuffix("_days").replace("_", " ").capitalize()
