"""totals_as_of: a window's totals as of the end of one day, the days after it left out."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from kpi_state.as_of import totals_as_of
from kpi_state.day_cells import CellUpdate
from kpi_state.rollup import Rollup


def test_a_period_as_of_a_day_leaves_out_what_later_days_added() -> None:
    rollup = Rollup("UTC")
    rollup.update(0, "global", "2026-03-02", CellUpdate({"orders": D(2)}, {"customers_invoiced": ["c1"]}))
    # A later day of the same week, the same customer from two partitions, and a new one.
    rollup.update(0, "global", "2026-03-04", CellUpdate({"orders": D(1)}, {"customers_invoiced": ["c2"]}))
    rollup.update(1, "global", "2026-03-04", CellUpdate({"orders": D(4)}, {"customers_invoiced": ["c2", "c3"]}))
    rollup.see_time(1772668800.0)  # 2026-03-05: the newest day is after both
    totals, start = totals_as_of(rollup, "global", "week", date(2026, 3, 2))
    assert start == "2026-03-02"
    assert totals.value("orders") == 2
    assert totals.distinct("customers_invoiced") == 1  # c2 and c3 came later, however often
    totals, _ = totals_as_of(rollup, "global", "week", date(2026, 3, 4))
    assert (totals.value("orders"), totals.distinct("customers_invoiced")) == (7, 3)
    rolling, _ = totals_as_of(rollup, "global", "7d", date(2026, 3, 3))
    assert (rolling.value("orders"), rolling.distinct("customers_invoiced")) == (2, 1)
