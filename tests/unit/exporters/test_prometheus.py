"""The KPI collector: names, labels, base units, status codes, describe() and the bound on scope ids."""

import os
import shutil
import subprocess
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.prometheus import KpiCollector
from kpi_state.catalogue import CATALOGUE
from kpi_state.records import KpiValue
from tests.conftest import require

STAGES = ("prospecting", "qualified", "meeting")


def record(kpi, scope, value, *, status="unknown", num=None, den=None, window="day", dims=None):
    return KpiValue(
        kpi=kpi, scope=scope, window=window, window_start=None, window_end=None, value=value,
        numerator=value if num is None else num, denominator=den, unit="count", status=status,
        dims=dims or {}, updated_at="2026-11-28T00:00:00Z",
    )


class Source:
    def __init__(self, records):
        self.records = records

    def current_records(self):
        return self.records


def scrape(records, max_series=100, source=None):
    """The KPI part of /metrics (KpiCollector.exposition), checked against what
    prometheus_client writes of the same collector's samples."""
    folds = []
    source = source or Source(records)
    collector = KpiCollector(source, max_series, on_fold=lambda k, n: folds.append((k, n)))
    text = collector.exposition().decode()
    registry = CollectorRegistry()
    registry.register(KpiCollector(source, max_series))
    assert text == generate_latest(registry).decode()
    return text, folds


def samples(text):
    """(name, sorted labels) → value, failing on any (name, labels) seen twice."""
    seen = Counter()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            seen[key] += 1
            values[key] = sample.value
    duplicates = [key for key, n in seen.items() if n > 1]
    assert not duplicates, f"duplicate samples: {duplicates[:5]}"
    return values


def value(values, name, **labels):
    return values[(name, tuple(sorted(labels.items())))]


def every_kpi_records(scopes=("rep:r-1", "rep:r-2", "team:t-1", "global"), windows=("day", "30d", "all")):
    """One record per catalogue KPI, dims value, scope and window, totals without dims too."""
    out = []
    for spec in CATALOGUE.values():
        if spec.dims == ("from", "to"):
            shapes = [{"from": a, "to": b} for a, b in zip(STAGES, STAGES[1:])]
        elif spec.dims == ("stage",):
            shapes = [{"stage": s} for s in STAGES] + ([{}] if spec.all_only else [])
        elif spec.dims == ("kpi",):
            shapes = [{"kpi": "win_rate"}, {"kpi": "revenue"}]
        else:
            shapes = [{}]
        for scope in scopes:
            for window in windows:
                for dims in shapes:
                    out.append(record(spec.name, scope, 0.5, num=1, den=2, window=window, dims=dims))
    return out


def test_every_kpi_with_dims_exposes_each_label_set_once():
    records = every_kpi_records()
    values = samples(scrape(records)[0])
    kpi_samples = [key for key in values if key[0] != "sales_kpi_status"]
    assert len(kpi_samples) == len(records)
    # And every record has exactly one status sample.
    assert sum(1 for key in values if key[0] == "sales_kpi_status") == len(records)


def test_dims_become_labels():
    records = [
        record("stage_conversion", "global", 0.5, window="30d", dims={"from": "prospecting", "to": "qualified"}),
        record("stage_conversion", "global", 0.25, window="30d", dims={"from": "qualified", "to": "meeting"}),
        record("pipeline_value", "global", 700, window="all", dims={"stage": "meeting"}),
        record("pipeline_value", "global", 1000, window="all"),
    ]
    values = samples(scrape(records)[0])
    scope = {"scope_kind": "global", "scope_id": "global"}
    assert value(values, "sales_kpi_stage_conversion_ratio", **scope, window="30d",
                 **{"from": "qualified", "to": "meeting"}) == 0.25
    assert value(values, "sales_kpi_pipeline_value", **scope, window="all", stage="meeting") == 700
    assert value(values, "sales_kpi_pipeline_value", **scope, window="all") == 1000
    assert value(values, "sales_kpi_status", kpi="stage_conversion", **scope, window="30d",
                 **{"from": "prospecting", "to": "qualified"}) == -1


def test_objective_dim_is_label_kpi_on_its_family_and_objective_on_the_status():
    records = [record("objective_attainment", "global", 1.2, window="quarter", status="green",
                      dims={"kpi": "win_rate"})]
    if "objective_attainment" not in CATALOGUE:
        pytest.skip("objective_attainment is added to the catalogue with thresholds")
    values = samples(scrape(records)[0])
    scope = {"scope_kind": "global", "scope_id": "global", "window": "quarter"}
    assert value(values, "sales_kpi_objective_attainment", **scope, kpi="win_rate") == 1.2
    assert value(values, "sales_kpi_status", **scope, kpi="objective_attainment", objective="win_rate") == 0


def test_days_are_exposed_in_seconds_under_a_seconds_name():
    records = [
        record("sales_cycle_days", "global", 12, window="30d"),
        record("days_to_pay", "global", 1.5, window="30d"),
        record("stage_duration_days", "global", 2, window="30d", dims={"stage": "meeting"}),
    ]
    values = samples(scrape(records)[0])
    scope = {"scope_kind": "global", "scope_id": "global", "window": "30d"}
    assert value(values, "sales_kpi_sales_cycle_duration_seconds", **scope) == 12 * 86400
    assert value(values, "sales_kpi_payment_delay_seconds", **scope) == 1.5 * 86400
    assert value(values, "sales_kpi_stage_duration_seconds", **scope, stage="meeting") == 2 * 86400


@pytest.mark.parametrize(
    ("kpi", "name"),
    [("calls", "sales_kpi_calls"), ("win_rate", "sales_kpi_win_ratio"),
     ("gross_margin", "sales_kpi_gross_margin_ratio"), ("meeting_rate", "sales_kpi_meetings_per_call"),
     ("revenue", "sales_kpi_revenue"), ("ltv_to_cac", "sales_kpi_ltv_to_cac"),
     ("days_to_pay", "sales_kpi_payment_delay_seconds")],
)
def test_names_follow_the_conventions(kpi, name):
    assert CATALOGUE[kpi].metric_name == name


def test_no_metric_name_holds_a_unit_word_other_than_its_suffix():
    for spec in CATALOGUE.values():
        words = spec.metric_name.split("_")
        for unit in ("days", "hours", "minutes", "percent", "seconds", "ratio", "total"):
            allowed = 1 if unit in ("seconds", "ratio") and words[-1] == unit else 0
            assert words.count(unit) == allowed, spec.metric_name


def test_money_help_names_the_reporting_currency():
    text, _ = scrape([record("revenue", "global", 10, window="all")])
    assert "# HELP sales_kpi_revenue Invoiced minus credit notes (reporting currency) (EUR)" in text


def test_describe_covers_the_catalogue_so_the_registry_refuses_duplicates():
    registry = CollectorRegistry()
    registry.register(KpiCollector(Source([]), 10))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Gauge("sales_kpi_win_ratio", "clash", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(KpiCollector(Source([]), 10))


def test_status_gauge_codes():
    values = samples(scrape([record("calls", "rep:r-1", 4, status="red"),
                             record("calls", "rep:r-2", 4, status="green"),
                             record("calls", "rep:r-3", 4, status="amber")])[0])
    codes = {labels: v for (name, labels), v in values.items() if name == "sales_kpi_status"}
    assert sorted(codes.values()) == [0, 1, 2]
    assert value(values, "sales_kpi_status", kpi="calls", scope_kind="rep", scope_id="r-1", window="day") == 2


def test_null_values_have_a_status_but_no_sample():
    values = samples(scrape([record("win_rate", "rep:r-1", None, num=0, den=0)])[0])
    assert not any(name == "sales_kpi_win_ratio" for name, _ in values)
    assert value(values, "sales_kpi_status", kpi="win_rate", scope_kind="rep", scope_id="r-1", window="day") == -1


def test_scopes_that_disappear_are_dropped_at_the_next_scrape():
    source = Source([record("calls", "rep:r-1", 4), record("calls", "rep:r-2", 5)])
    registry = CollectorRegistry()
    registry.register(KpiCollector(source, 100))
    assert 'scope_id="r-2"' in generate_latest(registry).decode()
    source.records = [record("calls", "rep:r-1", 6)]  # r-2 moved to another worker
    text = generate_latest(registry).decode()
    assert 'scope_id="r-2"' not in text
    assert 'sales_kpi_calls{scope_id="r-1",scope_kind="rep",window="day"} 6.0' in text


def test_the_metrics_text_follows_replaced_and_departed_records_across_scrapes():
    # exposition keeps each record's lines while it is the current one: a replaced record
    # (its KPI moved), a departed one and a new one must all show at the next scrape.
    first = [record("calls", "rep:r-1", 4), record("calls", "rep:r-2", 5, status="red"),
             record("win_rate", "team:t-1", 0.25, den=4, status="green")]
    source = Source(first)
    collector = KpiCollector(source, 100)

    def reference():
        registry = CollectorRegistry()
        registry.register(KpiCollector(Source(list(source.records)), 100))
        return generate_latest(registry).decode()

    assert collector.exposition().decode() == reference()
    source.records = [record("calls", "rep:r-1", 7, status="amber"), first[2], record("calls", "rep:r-3", 1)]
    text = collector.exposition().decode()
    assert text == reference()
    assert 'sales_kpi_calls{scope_id="r-1",scope_kind="rep",window="day"} 7.0' in text
    assert 'scope_id="r-2"' not in text and 'scope_id="r-3"' in text
    source.records = []
    assert collector.exposition().decode() == reference()
    assert "sales_kpi_calls" not in collector.exposition().decode()


def test_the_registry_refuses_a_metric_named_like_a_kpi_family_the_collector_writes():
    registry = CollectorRegistry()
    registry.register(KpiCollector(Source([]), 10).reserved_names())
    with pytest.raises(ValueError):
        Gauge("sales_kpi_calls", "clash", registry=registry)
    assert "sales_kpi" not in generate_latest(registry).decode()  # names only, no samples


def test_scope_ids_past_the_bound_fold_into_other():
    records = [record("calls", f"rep:r-{i}", i) for i in range(5)]
    text, folds = scrape(records, max_series=2)
    assert 'scope_id="r-0"' in text and 'scope_id="r-1"' in text
    assert 'scope_id="r-2"' not in text
    # r-2 + r-3 + r-4 = 9 calls are kept, under `other`.
    assert 'sales_kpi_calls{scope_id="other",scope_kind="rep",window="day"} 9.0' in text
    assert folds == [("calls", 3)]


def test_the_bound_counts_every_scope_of_a_kpi_upper_scopes_first():
    # Reps come first in the records, yet global and the teams are the ones kept.
    records = [record("calls", f"rep:r-{i}", 1) for i in range(3)]
    records += [record("calls", "team:t-1", 3), record("calls", "global", 3), record("calls", "team:t-2", 0)]
    records += [record("emails", "rep:r-0", 7)]  # another KPI has a bound of its own
    text, folds = scrape(records, max_series=3)
    kept = {line.split("{")[1].split("}")[0] for line in text.splitlines() if line.startswith("sales_kpi_calls{")}
    assert kept == {'scope_id="global",scope_kind="global",window="day"',
                    'scope_id="t-1",scope_kind="team",window="day"',
                    'scope_id="t-2",scope_kind="team",window="day"',
                    'scope_id="other",scope_kind="rep",window="day"'}
    assert 'sales_kpi_calls{scope_id="other",scope_kind="rep",window="day"} 3.0' in text
    assert 'sales_kpi_emails{scope_id="r-0",scope_kind="rep",window="day"} 7.0' in text
    assert folds == [("calls", 3)]


def test_the_fold_keeps_dims_apart():
    records = [
        record("stage_conversion", f"rep:r-{i}", None, num=n, den=d, window="30d", dims=dims)
        for i in range(3)
        for dims, n, d in (({"from": "prospecting", "to": "qualified"}, 1, 2),
                           ({"from": "qualified", "to": "meeting"}, i, 4))
    ]
    values = samples(scrape(records, max_series=1)[0])
    other = {"scope_kind": "rep", "scope_id": "other", "window": "30d"}
    # r-1 and r-2 fold: (1 + 1) / (2 + 2) for the first pair, (1 + 2) / (4 + 4) for the second.
    assert value(values, "sales_kpi_stage_conversion_ratio", **other, **{"from": "prospecting", "to": "qualified"}) == 0.5
    assert value(values, "sales_kpi_stage_conversion_ratio", **other, **{"from": "qualified", "to": "meeting"}) == 3 / 8


def test_folded_ratios_use_summed_numerators_and_denominators():
    records = [
        record("win_rate", "rep:r-0", 0.5, num=1, den=2),
        record("win_rate", "rep:r-1", 1.0, num=1, den=1),
        record("win_rate", "rep:r-2", 0.0, num=0, den=3),
    ]
    text, _ = scrape(records, max_series=1)
    # (1 + 0) / (1 + 3), not the mean of 1.0 and 0.0.
    assert 'sales_kpi_win_ratio{scope_id="other",scope_kind="rep",window="day"} 0.25' in text


def test_unknown_kpis_are_not_exposed():
    text, _ = scrape([record("not_a_kpi", "global", 1)])
    assert "not_a_kpi" not in text


def test_promtool_accepts_the_exposition_of_every_kpi():
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian package prometheus) is not installed")
    text, _ = scrape(every_kpi_records())
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                            env=dict(os.environ, LANG="C"))
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )
