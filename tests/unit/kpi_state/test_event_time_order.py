"""Entity lifecycles judged in event-time order: every arrival order gives the same KPIs and DLQ."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from kpi_state import events as ev
from kpi_state.directory import RepDirectory
from kpi_state.partition_engine import APPLIED, PartitionEngine
from kpi_state.routing import entity_key, fingerprint

DAY = 86400.0
LATENESS = 7 * DAY
STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


T0 = at("2026-11-02T09:00:00")


def created(eid: str, ts: float, stage: str = "prospecting", amount: str = "1000") -> ev.Event:
    return ev.OpportunityCreated(event_id=eid, ts=ts, opportunity_id="o-1", rep_id="r-1", stage=stage,
                                 amount=Decimal(amount), amount_original=Decimal(amount), currency="EUR")


def moved(eid: str, ts: float, to: str) -> ev.Event:
    return ev.OpportunityStageChanged(event_id=eid, ts=ts, opportunity_id="o-1", rep_id="r-1", to_stage=to)


def won(eid: str, ts: float, amount: str) -> ev.Event:
    return ev.OpportunityWon(event_id=eid, ts=ts, opportunity_id="o-1", rep_id="r-1",
                             amount=Decimal(amount), amount_original=Decimal(amount), currency="EUR")


def lost(eid: str, ts: float) -> ev.Event:
    return ev.OpportunityLost(event_id=eid, ts=ts, opportunity_id="o-1", rep_id="r-1")


def invoice(eid: str, ts: float, total: str, invoice_id: str = "i-1") -> ev.Event:
    line = ev.InvoiceLine(sku="s", quantity=Decimal(1), unit_price=Decimal(total), unit_price_original=Decimal(total))
    return ev.InvoiceIssued(event_id=eid, ts=ts, invoice_id=invoice_id, customer_id="c-1", currency="EUR",
                            lines=(line,), total=Decimal(total), total_original=Decimal(total), rep_id="r-1")


def payment(eid: str, ts: float, amount: str, invoice_id: str = "i-1") -> ev.Event:
    return ev.PaymentReceived(event_id=eid, ts=ts, invoice_id=invoice_id, customer_id="c-1",
                              amount=Decimal(amount), amount_original=Decimal(amount), currency="EUR")


def engine() -> PartitionEngine:
    directory = RepDirectory()
    directory.place("r-1", "t-1", "north")
    return PartitionEngine(tz="UTC", stages=STAGES, directory=directory, dedup_horizon_s=8 * DAY,
                           lateness_s=LATENESS)


def run(
    events: list[ev.Event], *, advance_to: float | None = None, sources: dict[str, str] | None = None
) -> tuple[dict, dict[str, str]]:
    """Apply `events` in the given arrival order: rep-scope totals of the cells, and the DLQ
    (event id → reason) of everything refused, withdrawn or orphaned. `sources` names the
    input partition of an event (by id; default one partition for all)."""
    e = engine()
    dlq: dict[str, str] = {}
    for offset, event in enumerate(events):
        raw = event.event_id.encode()  # stands for the forwarded record
        source = (sources or {}).get(event.event_id, "crm.events|0")
        outcome = e.apply(entity_key(event), event, offset, fingerprint(event), raw, source)
        if outcome not in (APPLIED, "held", "duplicate"):
            assert event.event_id not in dlq, "dead-lettered twice"
            dlq[event.event_id] = outcome
        for dead in e.take_dead():
            assert dead.raw is not None and dead.raw.decode() not in dlq, "dead-lettered twice"
            dlq[dead.raw.decode()] = dead.reason
    if advance_to is not None:
        e.advance(advance_to)
        for dead in e.take_dead():
            assert dead.raw is not None and dead.raw.decode() not in dlq, "dead-lettered twice"
            dlq[dead.raw.decode()] = dead.reason
    totals: dict[str, Decimal] = {}
    for (scope, _day), update in e.take_cells().items():
        if scope == "rep:r-1":
            for key, value in update.values.items():
                totals[key] = totals.get(key, 0) + value
    return totals, dlq


def every_order(events: list[ev.Event]) -> list[list[ev.Event]]:
    return [list(p) for p in itertools.permutations(events)]


def test_of_two_wins_the_earlier_counts_and_the_later_is_dead_lettered_in_any_order() -> None:
    events = [created("c", T0), won("genuine", T0 + DAY, "5000"), won("bogus", T0 + DAY + 10 * 3600, "9999")]
    for order in every_order(events):
        totals, dlq = run(order)
        assert totals["won"] == 1 and totals["bookings"] == Decimal("5000"), [e.event_id for e in order]
        assert dlq == {"bogus": "invalid_transition"}, [e.event_id for e in order]


def test_a_win_before_its_created_is_held_then_counted() -> None:
    totals, dlq = run([won("w", T0 + DAY, "700"), moved("m", T0 + 3600, "demo"), created("c", T0)])
    assert dlq == {}
    assert totals["won"] == 1 and totals["bookings"] == Decimal("700")
    # The move counted too: demo entered (and every earlier stage by the cumulative funnel).
    assert totals["stage_entered|stage=demo"] == 1
    assert "open_opps|stage=prospecting" not in totals  # closed: out of the open pipeline


def test_held_events_count_nothing_while_they_wait() -> None:
    totals, dlq = run([won("w", T0 + DAY, "700")])
    assert dlq == {} and totals == {}


def test_a_held_event_is_orphaned_once_it_falls_behind_the_lateness_horizon() -> None:
    # Another opportunity's event, a week and a day later, moves this partition's clock on.
    other = ev.OpportunityCreated(event_id="x", ts=T0 + LATENESS + DAY, opportunity_id="o-2", rep_id="r-1",
                                  stage="prospecting")
    totals, dlq = run([won("w", T0, "700"), other], advance_to=other.ts)
    assert dlq == {"w": "orphaned"}
    assert "won" not in totals


def test_a_held_event_waits_while_another_source_partition_lags_behind() -> None:
    # The win came from partition 0, which also ran a week and a day ahead; partition 1,
    # which may still carry the opportunity's created, has only reached the win's time.
    other = ev.OpportunityCreated(event_id="x", ts=T0 + LATENESS + DAY, opportunity_id="o-2", rep_id="r-1",
                                  stage="prospecting")
    slow = ev.CallLogged(event_id="slow", ts=T0, rep_id="r-1")
    sources = {"w": "crm.events|0", "x": "crm.events|0", "slow": "crm.events|1"}
    _, dlq = run([won("w", T0, "700"), other, slow], advance_to=other.ts, sources=sources)
    assert dlq == {}
    # Once the slow partition has moved on past the horizon too, the win is orphaned.
    later = ev.CallLogged(event_id="later", ts=T0 + LATENESS + DAY, rep_id="r-1")
    _, dlq = run([won("w", T0, "700"), other, slow, later], advance_to=other.ts,
                 sources={**sources, "later": "crm.events|1"})
    assert dlq == {"w": "orphaned"}


def holding_a_win_far_behind() -> tuple[PartitionEngine, ev.Event]:
    """An engine holding a win at T0 from crm.events|0, whose clock another opportunity's
    event moved a week and a day on: without a wait, the next advance orphans the win."""
    e = engine()
    other = ev.OpportunityCreated(event_id="x", ts=T0 + LATENESS + DAY, opportunity_id="o-2", rep_id="r-1",
                                  stage="prospecting")
    for offset, event in enumerate([won("w", T0, "700"), other]):
        e.apply(entity_key(event), event, offset, fingerprint(event), event.event_id.encode(), "crm.events|0")
    return e, other


def test_a_held_event_waits_for_an_input_partition_that_has_sent_nothing_yet() -> None:
    # Partition 1 exists but nothing of it was read yet (read late, or its worker started
    # late): it may still carry the opportunity's created, of any age.
    e, other = holding_a_win_far_behind()
    inputs = frozenset({"crm.events|0", "crm.events|1"})
    assert e.expect(inputs, wall_now=1000.0, patience_s=10) is False
    assert e.watermark is None
    e.advance(other.ts)
    assert e.take_dead() == []
    # Its created arrives: the win counts, and the watermark is the slower partition's.
    first = created("c", T0 - 3600)
    e.apply(entity_key(first), first, 2, fingerprint(first), b"c", "crm.events|1")
    assert e.expect(inputs, wall_now=1001.0, patience_s=10) is True
    assert e.watermark == first.ts
    e.advance(other.ts)
    assert e.take_dead() == []
    won_cells = [u.values.get("won") for (scope, _), u in e.take_cells().items() if scope == "rep:r-1"]
    assert 1 in won_cells


def test_an_input_partition_that_stays_empty_stops_holding_the_watermark_after_the_patience() -> None:
    e, other = holding_a_win_far_behind()
    inputs = frozenset({"crm.events|0", "billing.events|0"})
    assert e.expect(inputs, wall_now=1000.0, patience_s=10) is False
    assert e.expect(inputs, wall_now=1009.9, patience_s=10) is False
    assert e.watermark is None and e.awaited == ["billing.events|0"]
    # Ten seconds of silence: billing.events|0 no longer holds the clock.
    assert e.expect(inputs, wall_now=1010.0, patience_s=10) is True
    assert e.watermark == other.ts and e.awaited == []
    e.advance(other.ts)
    assert [dead.raw for dead in e.take_dead()] == [b"w"]
    # Waiting ends once: later calls with the same silent partition do not start over.
    assert e.expect(inputs, wall_now=2000.0, patience_s=10) is False
    assert e.watermark == other.ts
    # A partition added to the topic later is waited for in its turn.
    assert e.expect(inputs | {"crm.events|1"}, wall_now=2001.0, patience_s=10) is False
    assert e.watermark is None
    assert e.awaited == ["crm.events|1"]  # not billing.events|0, whose wait is over


def test_a_held_event_is_not_orphaned_within_the_horizon() -> None:
    almost = ev.CallLogged(event_id="almost", ts=T0 + LATENESS - 60, rep_id="r-1")
    _, dlq = run([won("w", T0, "700"), almost], advance_to=almost.ts)
    assert dlq == {}


def test_a_move_after_the_close_is_invalid_whichever_arrives_first() -> None:
    events = [created("c", T0), lost("l", T0 + DAY), moved("late-move", T0 + 2 * DAY, "demo")]
    for order in every_order(events):
        totals, dlq = run(order)
        assert dlq == {"late-move": "invalid_transition"}, [e.event_id for e in order]
        assert totals["lost"] == 1 and "stage_entered|stage=demo" not in totals


def test_a_backwards_move_in_event_time_is_invalid_whichever_arrives_first() -> None:
    events = [created("c", T0), moved("up", T0 + DAY, "proposal"), moved("down", T0 + 2 * DAY, "meeting")]
    for order in every_order(events):
        totals, dlq = run(order)
        assert dlq == {"down": "invalid_transition"}, [e.event_id for e in order]
        assert totals["open_opps|stage=proposal"] == 1


def test_a_resent_dead_lettered_event_is_a_duplicate_not_a_second_dead_letter() -> None:
    events = [created("c", T0), won("w1", T0 + DAY, "10"), won("w2", T0 + 2 * DAY, "20"), won("w2", T0 + 2 * DAY, "20")]
    _, dlq = run(events)
    assert dlq == {"w2": "invalid_transition"}


def test_payments_before_their_invoice_wait_and_count_when_it_comes() -> None:
    events = [payment("p", T0 + DAY, "100"), invoice("i", T0, "100")]
    for order in every_order(events):
        totals, dlq = run(order)
        assert dlq == {}
        assert totals["paid_count"] == 1 and totals["orders"] == 1


def test_a_payment_whose_invoice_never_comes_is_orphaned() -> None:
    later = invoice("other", T0 + LATENESS + DAY, "5", invoice_id="i-2")
    totals, dlq = run([payment("p", T0, "100"), later], advance_to=later.ts)
    assert dlq == {"p": "orphaned"}
    assert "paid_count" not in totals


@pytest.mark.parametrize("order", [("first", "second"), ("second", "first")])
def test_two_invoices_under_one_id_the_one_dated_first_is_the_invoice(order: tuple[str, str]) -> None:
    by_id = {"first": invoice("first", T0, "100"), "second": invoice("second", T0 + 3600, "250")}
    totals, dlq = run([by_id[name] for name in order])
    assert totals["invoiced"] == Decimal("100") and totals["orders"] == 1
    assert dlq == {"second": "invalid_transition"}


def test_an_opportunity_event_re_sent_after_the_dedup_horizon_is_still_a_duplicate() -> None:
    # A re-imported export: the ids left the dedup window long ago, the history knows them.
    e = engine()
    first = [created("c", T0), won("w", T0 + DAY, "500")]
    for offset, event in enumerate(first):
        e.apply(entity_key(event), event, offset, fingerprint(event), b"r", "crm.events|0")
    later = ev.CallLogged(event_id="later", ts=T0 + 60 * DAY, rep_id="r-1")
    e.apply(entity_key(later), later, 2, fingerprint(later), b"r", "crm.events|0")
    e.advance(later.ts)
    assert not e.records[entity_key(first[0])].seen  # forgotten at the horizon
    outcomes = [e.apply(entity_key(x), x, 3 + i, fingerprint(x), b"r", "events.backfill|0")
                for i, x in enumerate(first)]
    assert outcomes == ["duplicate", "duplicate"]
    assert e.take_dead() == []


def test_a_first_judgement_starts_a_quarter_behind_the_watermark_not_at_the_first_history_day() -> None:
    from datetime import date

    from kpi_state.watermark import complete_days

    days = complete_days(None, at("2026-11-20T09:00:00"), "UTC", date(2016, 10, 20))
    assert days[0] == date(2026, 8, 19) and days[-1] == date(2026, 11, 19)  # 92 days back
    assert complete_days(date(2026, 11, 18), at("2026-11-20T09:00:00"), "UTC", date(2016, 10, 20)) == [date(2026, 11, 19)]


def test_an_input_partition_heard_of_through_an_edge_holds_the_watermark_at_its_stream_time() -> None:
    # crm.events|1 sent nothing here, but its edge says how far it is: it is not waited for,
    # it counts for the watermark at that time, and it only ever moves forward.
    e, other = holding_a_win_far_behind()
    inputs = frozenset({"crm.events|0", "crm.events|1"})
    e.heard({"crm.events|1": T0})
    assert e.expect(inputs, wall_now=1000.0, patience_s=10) is False
    assert e.awaited == [] and e.watermark == T0
    e.advance(other.ts)
    assert e.take_dead() == []  # an event of crm.events|1 from T0 − lateness on may still match the win
    e.heard({"crm.events|1": other.ts})
    e.heard({"crm.events|1": T0})  # an older progress (a replayed batch) moves nothing back
    assert e.watermark == other.ts
    e.advance(other.ts)
    assert [dead.raw for dead in e.take_dead()] == [b"w"]
