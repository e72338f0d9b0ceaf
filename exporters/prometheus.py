"""KPI values as Prometheus metrics, read from the live state at scrape time."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from kpi_state.catalogue import CATALOGUE, KpiSpec
from kpi_state.records import KpiValue, scope_kind_and_id

_KIND_ORDER = {"global": 0, "region": 1, "team": 2}  # then reps, then any other kind

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
        # record key → (the record, its value line or None, its status line), see `exposition`.
        self._lines: dict[str, tuple[KpiValue, bytes | None, bytes]] = {}
        self._headers = {
            name: _header(spec.metric_name, kpi_help(spec, currency)) for name, spec in CATALOGUE.items()
        }
        self._status_header = _header(STATUS_METRIC, _status_family().documentation)

    def describe(self) -> list[Metric]:
        # Every family this collector can ever expose, so the registry refuses a
        # second collector (or a pipeline metric) that reuses one of the names.
        return [*self._families().values(), _status_family()]

    def reserved_names(self) -> Collector:
        """A collector of no samples that names this one's families, for a registry whose
        text format this one's `exposition` completes."""
        return _Reserved(self.describe())

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families = self._families()
        status = _status_family()
        for record in self._bounded(self.source.current_records()):
            spec = CATALOGUE.get(record.kpi)
            if spec is None:
                continue
            value, value_labels, status_labels = _samples(record, spec)
            if value is not None:
                families[record.kpi].add_sample(spec.metric_name, value_labels, value)
            status.add_sample(STATUS_METRIC, status_labels, float(STATUS_CODES.get(record.status, -1)))
        yield from (family for family in families.values() if family.samples)
        yield status
        # The caller formats each family between two yields, so this spans the whole
        # KPI part of a scrape (the histogram shows it from the next scrape on).
        if self.on_collected is not None:
            self.on_collected(time.perf_counter() - started)

    def exposition(self) -> bytes:
        """What generate_latest writes of `collect()`, byte for byte, in a fraction of its time.

        A scrape of a mid-size organisation is a few hundred thousand series; built as
        samples and escaped by prometheus_client it took seconds of the worker's one core
        (docs/BENCHMARKS.md, ninth round). A record is replaced, never changed, when its KPI
        moves, so its lines are kept while it is the current one: a scrape then costs a
        lookup per series for what did not change since the last one.
        """
        started = time.perf_counter()
        cached, kept = self._lines, {}
        by_kpi: dict[str, list[bytes]] = {}
        statuses: list[bytes] = []
        for record in self._bounded(self.source.current_records()):
            spec = CATALOGUE.get(record.kpi)
            if spec is None:
                continue
            entry = cached.get(record.key)
            if entry is None or entry[0] is not record:
                entry = (record, *_sample_lines(record, spec))
            kept[record.key] = entry
            if entry[1] is not None:
                by_kpi.setdefault(record.kpi, []).append(entry[1])
            statuses.append(entry[2])
        self._lines = kept  # records no longer current leave the cache with their series
        out: list[bytes] = []
        for name in CATALOGUE:
            lines = by_kpi.get(name)
            if lines:
                out.append(self._headers[name])
                out += lines
        out.append(self._status_header)
        out += statuses
        if self.on_collected is not None:
            self.on_collected(time.perf_counter() - started)
        return b"".join(out)

    def _families(self) -> dict[str, Metric]:
        return {
            name: Metric(spec.metric_name, kpi_help(spec, self.currency), "gauge")
            for name, spec in CATALOGUE.items()
        }

    def _bounded(self, records: Iterable[KpiValue]) -> Iterator[KpiValue]:
        # The bound is per KPI, over every scope kind (the contract's "series per KPI"). The
        # few upper scopes are admitted first, global to teams, so a board's totals never
        # fold before a rep does.
        by_kind: list[list[KpiValue]] = [[] for _ in range(len(_KIND_ORDER) + 1)]
        for record in records:
            by_kind[_KIND_ORDER.get(record.scope.partition(":")[0], len(_KIND_ORDER))].append(record)
        seen: dict[str, set[str]] = {}
        folded: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], list[KpiValue]] = {}
        for record in itertools.chain.from_iterable(by_kind):
            scopes = seen.setdefault(record.kpi, set())
            if record.scope in scopes or len(scopes) < self.max_series:
                scopes.add(record.scope)
                yield record
            else:
                kind, _ = scope_kind_and_id(record.scope)
                dims = tuple(sorted(record.dims.items()))
                folded.setdefault((record.kpi, kind, record.window, dims), []).append(record)
        for (kpi, kind, window, _), group in folded.items():
            if self.on_fold is not None:
                self.on_fold(kpi, len(group))
            yield _fold(kpi, f"{kind}:{OTHER}", window, group)


class _Reserved(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def describe(self) -> list[Metric]:
        return self._families

    def collect(self) -> list[Metric]:
        return []


def _header(name: str, documentation: str) -> bytes:
    escaped = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} gauge\n".encode()


def _label_text(labels: dict[str, str]) -> str:
    # Sorted by name and escaped as prometheus_client's text format writes them.
    return ",".join(f'{name}="{_escaped(value)}"' for name, value in sorted(labels.items()))


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _samples(record: KpiValue, spec: KpiSpec) -> tuple[float | None, dict[str, str], dict[str, str]]:
    """(value in base units or None, its labels, the status sample's labels) of one record."""
    kind, ident = scope_kind_and_id(record.scope)
    labels = {"scope_kind": kind, "scope_id": ident, "window": record.window}
    dims = {name: record.dims[name] for name in spec.dims if name in record.dims}
    value = None if record.value is None else float(record.value) * spec.metric_scale
    status_dims = {STATUS_DIM_LABELS.get(k, k): v for k, v in dims.items()}
    return value, {**labels, **dims}, {"kpi": record.kpi, **labels, **status_dims}


def _sample_lines(record: KpiValue, spec: KpiSpec) -> tuple[bytes | None, bytes]:
    """(value line or None when the KPI has no value, status line) of one record, as `collect` has them."""
    value, value_labels, status_labels = _samples(record, spec)
    value_line = None
    if value is not None:
        value_line = f"{spec.metric_name}{{{_label_text(value_labels)}}} {floatToGoString(value)}\n".encode()
    code = floatToGoString(float(STATUS_CODES.get(record.status, -1)))
    status_line = f"{STATUS_METRIC}{{{_label_text(status_labels)}}} {code}\n".encode()
    return value_line, status_line


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
