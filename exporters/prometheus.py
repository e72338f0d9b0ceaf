"""KPI values as Prometheus metrics, read from the live state at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kpi_state.catalogue import CATALOGUE, KpiSpec
from kpi_state.records import KpiValue, scope_kind_and_id

STATUS_CODES = {"green": 0, "amber": 1, "red": 2, "unknown": -1}
STATUS_METRIC = "sales_kpi_status"
OTHER = "other"
# On the status gauge the label `kpi` names the KPI itself, so the dim `kpi` of
# objective_attainment (the KPI whose objective it is) is spelled `objective` there.
STATUS_DIM_LABELS = {"kpi": "objective"}


class CurrentValues(Protocol):
    """What the collector needs: the current-window records of every KPI and scope."""

    def current_records(self) -> Iterable[KpiValue]: ...


def kpi_help(spec: KpiSpec, currency: str) -> str:
    if spec.unit == "money":
        return f"{spec.help} ({currency})"
    if spec.unit == "days":
        return f"{spec.help} (seconds)"
    return spec.help


class KpiCollector(Collector):
    """One gauge family per catalogue KPI plus one status gauge, bounded in label values.

    Labels are scope_kind, scope_id, window and the KPI's dims (a KPI total without dims,
    such as open_opportunities over every stage, has no dim label: `{stage=""}` in PromQL).
    Values are in base units (days → seconds). Past `max_series` scope ids per KPI and
    scope kind, the rest fold into scope id `other`, one series per window and dims; the
    folded value is recomputed from summed numerators and denominators, and `on_fold` is
    told how many records were folded.

    Nothing is cached: every scrape reads the current records, so scopes this worker no
    longer owns (after a rebalance) and periods that have ended disappear at once.
    """

    def __init__(
        self,
        source: CurrentValues,
        max_series: int,
        on_fold: Callable[[str, int], None] | None = None,
        currency: str = "EUR",
        on_collected: Callable[[float], None] | None = None,
    ) -> None:
        self.source = source
        self.max_series = max_series
        self.on_fold = on_fold
        self.currency = currency
        self.on_collected = on_collected  # told the seconds one collection took

    def describe(self) -> list[Metric]:
        # Every family this collector can ever expose, so the registry refuses a
        # second collector (or a pipeline metric) that reuses one of the names.
        return [*self._families().values(), _status_family()]

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families = self._families()
        status = _status_family()
        for record in self._bounded(self.source.current_records()):
            spec = CATALOGUE.get(record.kpi)
            if spec is None:
                continue
            kind, ident = scope_kind_and_id(record.scope)
            labels = {"scope_kind": kind, "scope_id": ident, "window": record.window}
            dims = {name: record.dims[name] for name in spec.dims if name in record.dims}
            if record.value is not None:
                families[record.kpi].add_sample(
                    spec.metric_name, {**labels, **dims}, float(record.value) * spec.metric_scale
                )
            status_dims = {STATUS_DIM_LABELS.get(k, k): v for k, v in dims.items()}
            status.add_sample(
                STATUS_METRIC,
                {"kpi": record.kpi, **labels, **status_dims},
                float(STATUS_CODES.get(record.status, -1)),
            )
        yield from (family for family in families.values() if family.samples)
        yield status
        # The caller formats each family between two yields, so this spans the whole
        # KPI part of a scrape (the histogram shows it from the next scrape on).
        if self.on_collected is not None:
            self.on_collected(time.perf_counter() - started)

    def _families(self) -> dict[str, Metric]:
        return {
            name: Metric(spec.metric_name, kpi_help(spec, self.currency), "gauge")
            for name, spec in CATALOGUE.items()
        }

    def _bounded(self, records: Iterable[KpiValue]) -> Iterator[KpiValue]:
        seen: dict[tuple[str, str], set[str]] = {}
        folded: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], list[KpiValue]] = {}
        for record in records:
            kind, ident = scope_kind_and_id(record.scope)
            idents = seen.setdefault((record.kpi, kind), set())
            if ident in idents or len(idents) < self.max_series:
                idents.add(ident)
                yield record
            else:
                dims = tuple(sorted(record.dims.items()))
                folded.setdefault((record.kpi, kind, record.window, dims), []).append(record)
        for (kpi, kind, window, _), group in folded.items():
            if self.on_fold is not None:
                self.on_fold(kpi, len(group))
            yield _fold(kpi, f"{kind}:{OTHER}", window, group)


def _status_family() -> Metric:
    return Metric(STATUS_METRIC, "KPI status: 0 green, 1 amber, 2 red, -1 unknown", "gauge")


def _fold(kpi: str, scope: str, window: str, group: list[KpiValue]) -> KpiValue:
    numerator = sum(r.numerator or 0 for r in group)
    has_denominator = any(r.denominator is not None for r in group)
    denominator = sum(r.denominator or 0 for r in group) if has_denominator else None
    if has_denominator:
        value = numerator / denominator if denominator else None
    else:
        value = numerator
    first = group[0]
    return KpiValue(
        kpi=kpi,
        scope=scope,
        window=window,
        window_start=first.window_start,
        window_end=first.window_end,
        value=value,
        numerator=numerator,
        denominator=denominator,
        unit=first.unit,
        status="unknown",
        dims=first.dims,
        updated_at=first.updated_at,
    )
