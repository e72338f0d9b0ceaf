"""KPI values as Prometheus metrics, read from the live state at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kpi_state.catalogue import CATALOGUE
from kpi_state.records import KpiValue, scope_kind_and_id

STATUS_CODES = {"green": 0, "amber": 1, "red": 2, "unknown": -1}
OTHER = "other"


class CurrentValues(Protocol):
    """What the collector needs: the current-window records of every KPI and scope."""

    def current_records(self) -> Iterable[KpiValue]: ...


class KpiCollector(Collector):
    """One gauge family per KPI plus one status gauge, bounded in label values.

    Past `max_series` scope ids per KPI and scope kind, the rest fold into scope id
    `other` (counts are summed there; ratios would need numerators, so their value is
    recomputed from summed numerator and denominator), and `on_fold` is told how many.
    """

    def __init__(self, source: CurrentValues, max_series: int, on_fold=None) -> None:
        self.source = source
        self.max_series = max_series
        self.on_fold = on_fold

    def describe(self) -> list:
        # Families depend on state; an empty describe keeps registration cheap.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["scope_kind", "scope_id", "window"]
        families: dict[str, GaugeMetricFamily] = {}
        status = GaugeMetricFamily(
            "sales_kpi_status",
            "KPI status: 0 green, 1 amber, 2 red, -1 unknown",
            labels=["kpi", *labels],
        )
        for record in self._bounded(self.source.current_records()):
            spec = CATALOGUE.get(record.kpi)
            if spec is None:
                continue
            family = families.get(record.kpi)
            if family is None:
                family = families[record.kpi] = GaugeMetricFamily(
                    spec.metric_name, spec.help, labels=labels
                )
            kind, ident = scope_kind_and_id(record.scope)
            if record.value is not None:
                family.add_metric([kind, ident, record.window], float(record.value))
            status.add_metric(
                [record.kpi, kind, ident, record.window], STATUS_CODES.get(record.status, -1)
            )
        yield from families.values()
        yield status

    def _bounded(self, records: Iterable[KpiValue]) -> Iterator[KpiValue]:
        seen: dict[tuple[str, str], set[str]] = {}
        folded: dict[tuple[str, str, str], list[KpiValue]] = {}
        for record in records:
            kind, ident = scope_kind_and_id(record.scope)
            idents = seen.setdefault((record.kpi, kind), set())
            if ident in idents or len(idents) < self.max_series:
                idents.add(ident)
                yield record
            else:
                folded.setdefault((record.kpi, kind, record.window), []).append(record)
        for (kpi, kind, window), group in folded.items():
            if self.on_fold is not None:
                self.on_fold(kpi, len(group))
            yield _fold(kpi, f"{kind}:{OTHER}", window, group)


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
