"""The partition engine (kpi_state.partition_engine): replayed offsets, duplicates, recovery, snapshots over time.

Lifecycles are fed in event-time order only: what happens to out-of-order events is the
entity modules' business (issue 10 changes it).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

from kpi_state.directory import RepDirectory
from kpi_state.events import (
    CallLogged,
    InvoiceIssued,
    InvoiceLine,
    OpportunityCreated,
    OpportunityWon,
    PaymentReceived,
)
from kpi_state.partition_engine import APPLIED, PartitionEngine
from kpi_state.routing import entity_key, fingerprint

STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
DAY = 86400.0


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


HOUR = 3600.0
MON = utc("2026-03-02T10:00:00")


def engine(horizon_days: float = 8) -> PartitionEngine:
    directory = RepDirectory()
    directory.place("a", "t1", "north")
    return PartitionEngine(tz="UTC", stages=STAGES, directory=directory, dedup_horizon_s=horizon_days * DAY)


def call(event_id: str, ts: float = MON, rep: str = "a", **kw) -> CallLogged:
    return CallLogged(event_id=event_id, ts=ts, rep_id=rep, **kw)


def feed(e: PartitionEngine, event, offset: int) -> str:
    return e.apply(entity_key(event), event, offset, fingerprint(event))


def calls_on(e: PartitionEngine, scope: str, day: str) -> D:
    return e.cells.cell(scope, day).get("calls", D(0))


def test_an_event_applies_once_per_offset() -> None:
    e = engine()
    assert feed(e, call("e1"), 0) == APPLIED
    assert feed(e, call("e2"), 1) == APPLIED
    # Re-read after a restart: at or below the entity's applied offset.
    assert feed(e, call("e1"), 0) == "replayed"
    assert feed(e, call("e2"), 1) == "replayed"
    assert calls_on(e, "rep:a", "2026-03-02") == 2
    assert calls_on(e, "global", "2026-03-02") == 2


def test_offsets_are_judged_per_entity() -> None:
    e = engine()
    assert feed(e, call("e1", rep="a"), 5) == APPLIED
    # Rep b's entity has applied nothing yet: a lower offset is new for it.
    assert feed(e, call("e2", rep="b"), 3) == APPLIED


def test_duplicates_and_conflicting_duplicates() -> None:
    e = engine()
    assert feed(e, call("e1", duration_s=60.0), 0) == APPLIED
    assert feed(e, call("e1", duration_s=60.0), 1) == "duplicate"  # re-sent, same content
    assert feed(e, call("e1", duration_s=90.0), 2) == "conflicting_duplicate"  # same id, other content
    assert calls_on(e, "rep:a", "2026-03-02") == 1
    # Both were handled: a replay of those offsets is recognised too.
    assert feed(e, call("e1", duration_s=90.0), 2) == "replayed"


def test_ids_are_forgotten_after_the_dedup_horizon() -> None:
    e = engine(horizon_days=8)
    assert feed(e, call("e1", MON), 0) == APPLIED
    assert feed(e, call("e2", MON + 7 * DAY), 1) == APPLIED
    assert feed(e, call("e1", MON), 2) == "duplicate"  # 7 days: within the horizon
    # A rep's ids leave the window a day at a time: once the whole day they arrived in
    # (UTC, MON is 10:00) is behind the horizon of its newest event (kpi_state.rep_days).
    assert feed(e, call("e3", MON + 8 * DAY + 13 * HOUR), 3) == APPLIED
    assert "e1" in e.records[b"rep:a"].seen  # its day ends 1 h after the horizon
    assert feed(e, call("e4", MON + 8 * DAY + 14 * HOUR), 4) == APPLIED
    record = e.records[b"rep:a"]
    assert "e1" not in record.seen and "e2" in record.seen
    assert feed(e, call("e1", MON), 5) == "duplicate"  # by its digest now


def test_state_survives_a_restart() -> None:
    e = engine()
    feed(e, call("e1"), 0)
    feed(e, call("e2", MON + DAY), 1)
    opened = OpportunityCreated(event_id="c1", ts=MON, opportunity_id="o1", rep_id="a", stage="qualified",
                                amount=D(1000), amount_original=D(1000), currency="EUR")
    feed(e, opened, 2)
    e.take_cells()
    stored = e.take_dirty()
    assert {b"rep:a", b"opp:o1"} <= set(stored)  # one record per entity (and maybe the engine's own)
    again = engine()
    for key, raw in stored.items():
        again.load(key, raw)
    again.rebuild()
    # The same cells as before the restart, and the applied offsets are remembered.
    assert again.take_cells() == _all_cells(e)
    assert feed(again, call("e2", MON + DAY), 1) == "replayed"
    assert feed(again, opened, 2) == "replayed"
    assert again.now == MON + DAY


def _all_cells(e: PartitionEngine) -> dict:
    e.cells.mark_all_dirty()
    return e.cells.take_dirty()


def test_an_opportunity_in_order() -> None:
    e = engine()
    feed(e, OpportunityCreated(event_id="c1", ts=MON, opportunity_id="o1", rep_id="a", stage="prospecting"), 0)
    feed(e, OpportunityWon(event_id="w1", ts=MON + 3 * DAY, opportunity_id="o1", rep_id="a",
                           amount=D(5000), amount_original=D(5000), currency="EUR"), 1)
    cells = e.take_cells()
    assert cells[("rep:a", "2026-03-02")].values["opportunities_created"] == 1
    won_day = cells[("rep:a", "2026-03-05")].values
    assert (won_day["won"], won_day["bookings"], won_day["cycle_days_sum"]) == (1, 5000, 3)
    assert cells[("rep:a", "")].values.get("open_opps|stage=prospecting", D(0)) == 0  # closed


def invoice(due: float, total: int = 1200) -> InvoiceIssued:
    line = InvoiceLine(sku="s", quantity=D(1), unit_price=D(total), unit_price_original=D(total))
    return InvoiceIssued(event_id="i1", ts=MON, invoice_id="inv1", customer_id="c1", currency="EUR",
                         lines=(line,), total=D(total), total_original=D(total), rep_id="a", due_ts=due)


def overdue(e: PartitionEngine) -> D:
    e.take_cells()
    return e.cells.cell("rep:a", "").get("overdue", D(0))


def test_snapshots_are_refreshed_as_time_advances() -> None:
    e = engine()
    due = MON + 30 * DAY
    feed(e, invoice(due), 0)
    assert overdue(e) == 0  # not due yet
    e.advance(due)
    assert overdue(e) == 0  # due_ts < now is overdue: not at the due instant itself
    e.advance(due + 1)
    assert overdue(e) == 1200
    feed(e, PaymentReceived(event_id="p1", ts=due + 2, invoice_id="inv1", customer_id="c1",
                            amount=D(1200), amount_original=D(1200), currency="EUR"), 1)
    assert overdue(e) == 0  # paid


def test_time_advanced_by_other_entities_turns_an_invoice_overdue() -> None:
    # The partition's clock is the newest event time of any of its entities.
    e = engine()
    due = MON + 2 * DAY
    feed(e, invoice(due), 0)
    feed(e, call("later", due + DAY), 1)
    e.advance(e.now)
    assert overdue(e) == 1200
