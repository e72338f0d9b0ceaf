"""The KPI collector: names, labels, status codes and the bound on scope ids."""

from prometheus_client import CollectorRegistry, generate_latest

from exporters.prometheus import KpiCollector
from kpi_state.records import KpiValue


def record(kpi: str, scope: str, value, *, status="unknown", num=None, den=None, window="day"):
    return KpiValue(
        kpi=kpi, scope=scope, window=window, window_start=None, window_end=None, value=value,
        numerator=value if num is None else num, denominator=den, unit="count", status=status,
        dims={}, updated_at="2026-11-28T00:00:00Z",
    )


class Source:
    def __init__(self, records):
        self.records = records

    def current_records(self):
        return self.records


def scrape(records, max_series=100):
    folds = []
    registry = CollectorRegistry()
    registry.register(KpiCollector(Source(records), max_series, on_fold=lambda k, n: folds.append((k, n))))
    return generate_latest(registry).decode(), folds


def test_one_family_per_kpi_with_scope_labels():
    text, _ = scrape([record("calls", "rep:r-1", 4), record("calls", "global", 9, window="all")])
    assert 'sales_kpi_calls{scope_id="r-1",scope_kind="rep",window="day"} 4.0' in text
    assert 'sales_kpi_calls{scope_id="global",scope_kind="global",window="all"} 9.0' in text
    assert "# TYPE sales_kpi_calls gauge" in text


def test_status_gauge_codes():
    text, _ = scrape([record("calls", "rep:r-1", 4, status="red"), record("calls", "rep:r-2", 4, status="green")])
    assert 'sales_kpi_status{kpi="calls",scope_id="r-1",scope_kind="rep",window="day"} 2.0' in text
    assert 'sales_kpi_status{kpi="calls",scope_id="r-2",scope_kind="rep",window="day"} 0.0' in text


def test_scope_ids_past_the_bound_fold_into_other():
    records = [record("calls", f"rep:r-{i}", i) for i in range(5)]
    text, folds = scrape(records, max_series=2)
    assert 'scope_id="r-0"' in text and 'scope_id="r-1"' in text
    assert 'scope_id="r-2"' not in text
    # r-2 + r-3 + r-4 = 9 calls are kept, under `other`.
    assert 'sales_kpi_calls{scope_id="other",scope_kind="rep",window="day"} 9.0' in text
    assert folds == [("calls", 3)]


def test_folded_ratios_use_summed_numerators_and_denominators():
    records = [
        record("calls", "rep:r-0", 0.5, num=1, den=2),
        record("calls", "rep:r-1", 1.0, num=1, den=1),
        record("calls", "rep:r-2", 0.0, num=0, den=3),
    ]
    text, _ = scrape(records, max_series=1)
    # (1 + 0) / (1 + 3), not the mean of 1.0 and 0.0.
    assert 'sales_kpi_calls{scope_id="other",scope_kind="rep",window="day"} 0.25' in text


def test_unknown_kpis_are_not_exposed():
    text, _ = scrape([record("not_a_kpi", "global", 1)])
    assert "not_a_kpi" not in text.split("sales_kpi_status")[0]
