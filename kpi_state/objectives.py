"""objective_attainment: a KPI's value over the objective configured for its scope and window kind."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from kpi_state.formulas import KpiResult


def attainment(results: Iterable[KpiResult], objectives: list[tuple[str, float]]) -> Iterator[KpiResult]:
    """One record per configured objective (dims {kpi}): numerator the KPI's value, denominator the objective."""
    if not objectives:
        return
    values = {r.kpi: r.value for r in results if not r.dims}
    for kpi, objective in objectives:
        goal = Decimal(str(objective))
        value = values.get(kpi)
        yield KpiResult("objective_attainment", (("kpi", kpi),), value, goal,
                        None if value is None else value / goal)
