"""Customer billing: invoices, partial and early payments, credit notes, overdue, first invoice, storage."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

import pytest

from kpi_state.codec import CUSTOMER
from kpi_state.contributions import Contribution
from kpi_state.customer import CustomerState
from kpi_state.events import CreditNoteIssued, Event, InvoiceIssued, InvoiceLine, PaymentReceived

UNASSIGNED = ("team", "unassigned")
R1 = ("rep", "r-1")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


MON = at("2026-11-23T10:00:00+00:00")
TUE = at("2026-11-24T10:00:00+00:00")
WED_16 = at("2026-11-25T16:00:00+00:00")
THU_18 = at("2026-11-26T18:00:00+00:00")
M, T, W, H = "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"

Line = tuple[str, str, str | None]  # quantity, unit price, unit cost


def invoice(ts: float, *lines: Line, invoice_id: str = "i-1", rep: str | None = None,
            due: float | None = None, customer: str = "c-1", rate: str = "1") -> Event:
    """An invoice whose original prices are the reporting ones divided by `rate`."""
    built = tuple(
        InvoiceLine(sku=f"s{n}", quantity=Decimal(q), unit_price=Decimal(p),
                    unit_price_original=Decimal(p) / Decimal(rate),
                    unit_cost=None if c is None else Decimal(c))
        for n, (q, p, c) in enumerate(lines or [("1", "100", None)])
    )
    total = sum((line.quantity * line.unit_price for line in built), Decimal(0))
    return InvoiceIssued(event_id=f"i{invoice_id}{ts}", ts=ts, invoice_id=invoice_id, customer_id=customer,
                         currency="EUR" if rate == "1" else "USD", lines=built, total=total,
                         total_original=total / Decimal(rate), rep_id=rep, due_ts=due)


def pay(ts: float, amount: str, invoice_id: str = "i-1", customer: str = "c-1") -> Event:
    return PaymentReceived(event_id=f"p{invoice_id}{ts}{amount}", ts=ts, invoice_id=invoice_id,
                           customer_id=customer, amount=Decimal(amount), amount_original=Decimal(amount),
                           currency="EUR")


def credit(ts: float, amount: str, invoice_id: str = "i-1") -> Event:
    return CreditNoteIssued(event_id=f"c{invoice_id}{ts}{amount}", ts=ts, invoice_id=invoice_id,
                            customer_id="c-1", amount=Decimal(amount), amount_original=Decimal(amount),
                            currency="EUR")


def build(events: list[Event]) -> CustomerState:
    """Apply `events` in arrival order; every one of them must be accepted."""
    state, reason = CustomerState.start(events[0])
    assert reason is None and state is not None
    for event in events[1:]:
        assert state.apply(event) is None, event
    return state


def cells(contributions: list[Contribution], component: str) -> dict[tuple, object]:
    """{(attribution, day[, distinct id]): value} of one component, summed over invoices."""
    out: dict[tuple, object] = {}
    for c in contributions:
        if c.component == component:
            key = (c.attribution, c.day) + ((c.distinct,) if c.distinct is not None else ())
            out[key] = out.get(key, 0) + c.value
    return out


COMPONENT_CASES = [
    # (id, events, component, expected {(attribution, day): value})
    ("an order per invoice, for its rep", [invoice(MON, rep="r-1")], "orders", {(R1, M): 1}),
    ("without a rep: team unassigned", [invoice(MON)], "orders", {(UNASSIGNED, M): 1}),
    ("invoiced is Σ quantity × price",
     [invoice(MON, ("2", "10.00", "6.00"), ("1", "5.00", None), ("3", "1.50", "0"))], "invoiced",
     {(UNASSIGNED, M): Decimal("29.50")}),  # 20 + 5 + 4.50
    ("units are Σ quantity", [invoice(MON, ("2", "10", None), ("0.5", "4", None))], "units",
     {(UNASSIGNED, M): Decimal("2.5")}),
    ("gross over the lines with a cost only",
     [invoice(MON, ("2", "10.00", "6.00"), ("1", "5.00", None), ("3", "1.50", "0"))], "gross_with_cost",
     {(UNASSIGNED, M): Decimal("24.50")}),  # 20 + 4.50; the uncosted 5.00 line is left out
    ("margin over the lines with a cost only",
     [invoice(MON, ("2", "10.00", "6.00"), ("1", "5.00", None), ("3", "1.50", "0"))], "margin_with_cost",
     {(UNASSIGNED, M): Decimal("12.50")}),  # 2 × 4 + 3 × 1.50
    ("a cost above the price is a negative margin", [invoice(MON, ("1", "10", "12"))], "margin_with_cost",
     {(UNASSIGNED, M): Decimal("-2")}),
    ("no gross at all when no line carries a cost", [invoice(MON, ("1", "10", None))], "gross_with_cost", {}),
    ("currency already converted: reporting amounts only",
     [invoice(MON, ("2", "9.20", None), rate="0.92")], "invoiced", {(UNASSIGNED, M): Decimal("18.40")}),
    ("partial payments: paid when the last one closes the gap",
     # Mon 10:00 → Wed 16:00 = 2.25 days
     [invoice(MON, rep="r-1"), pay(TUE, "40"), pay(WED_16, "60")], "paid_days_sum", {(R1, W): Decimal("2.25")}),
    ("partial payments: counted once, at the paid day",
     [invoice(MON, rep="r-1"), pay(TUE, "40"), pay(WED_16, "60")], "paid_count", {(R1, W): 1}),
    ("short of the total: not paid", [invoice(MON), pay(TUE, "40"), pay(WED_16, "59.99")], "paid_count", {}),
    ("overpaid: paid at the payment that covers the total",
     [invoice(MON), pay(TUE, "150")], "paid_days_sum", {(UNASSIGNED, T): Decimal(1)}),
    ("payment before the invoice, dated later: paid at the payment",
     [pay(WED_16, "100"), invoice(MON)], "paid_days_sum", {(UNASSIGNED, W): Decimal("2.25")}),
    ("prepayment dated before the issue: paid at the issue",
     [pay(MON, "100"), invoice(TUE)], "paid_days_sum", {(UNASSIGNED, T): Decimal(0)}),
    ("payments arriving out of time order: paid at the later one",
     [invoice(MON), pay(WED_16, "60"), pay(TUE, "40")], "paid_days_sum", {(UNASSIGNED, W): Decimal("2.25")}),
    ("a credit note completes the payment",
     # 70 paid Tue, 30 credited Thu 18:00: 100 − 30 ≤ 70; Mon 10:00 → Thu 18:00 = 3 days 8 h
     [invoice(MON), pay(TUE, "70"), credit(THU_18, "30")], "paid_days_sum",
     {(UNASSIGNED, H): Decimal("3.333333333")}),
    ("credit notes count at their own day, for the invoice's scope",
     [invoice(MON, rep="r-1"), credit(TUE, "30"), credit(THU_18, "5.5")], "credited",
     {(R1, T): Decimal("30"), (R1, H): Decimal("5.5")}),
    ("a fully credited invoice is settled at the credit", [invoice(MON), credit(TUE, "100")], "paid_count",
     {(UNASSIGNED, T): 1}),
    ("a credit note before its invoice counts once the invoice arrives",
     [credit(TUE, "30"), invoice(MON, rep="r-1")], "credited", {(R1, T): Decimal("30")}),
    ("nothing to pay: settled at the issue", [invoice(MON, ("1", "0", None))], "paid_days_sum",
     {(UNASSIGNED, M): Decimal(0)}),
    ("a new customer at its first invoice", [invoice(MON, rep="r-1"), invoice(TUE, invoice_id="i-2")],
     "new_customers", {(R1, M): 1}),
    ("an earlier-dated invoice arriving later becomes the first",
     [invoice(TUE, rep="r-1"), invoice(MON, invoice_id="i-0")], "new_customers", {(UNASSIGNED, M): 1}),
    ("customers invoiced: one distinct id per scope and day",
     [invoice(MON, rep="r-1"), invoice(MON + 60, invoice_id="i-2", rep="r-1"), invoice(TUE, invoice_id="i-3")],
     "customers_invoiced", {(R1, M, "c-1"): 1, (UNASSIGNED, T, "c-1"): 1}),
]


@pytest.mark.parametrize(("events", "component", "expected"),
                         [pytest.param(*case[1:], id=case[0]) for case in COMPONENT_CASES])
def test_components(events: list[Event], component: str, expected: dict) -> None:
    assert cells(build(events).contributions("UTC", THU_18), component) == expected


def test_pending_movements_count_nothing_until_their_invoice() -> None:
    state = build([pay(MON, "10", invoice_id="i-9"), credit(MON, "5", invoice_id="i-9")])
    assert state.contributions("UTC", THU_18) == []


DUE = at("2026-11-30T00:00:00+00:00")
LATER = at("2026-12-02T00:00:00+00:00")

OVERDUE_CASES = [
    # (id, events, now, expected {(attribution, ""): outstanding})
    ("before the due date", [invoice(MON, due=DUE)], TUE, {}),
    ("at the due instant: not yet", [invoice(MON, due=DUE)], DUE, {}),
    ("after the due date: the full total", [invoice(MON, due=DUE, rep="r-1")], LATER, {(R1, ""): Decimal(100)}),
    ("after a partial payment and a credit: what is left",
     [invoice(MON, due=DUE), pay(TUE, "40"), credit(WED_16, "15.50")], LATER, {(UNASSIGNED, ""): Decimal("44.50")}),
    ("after full payment: nothing", [invoice(MON, due=DUE), pay(TUE, "100")], LATER, {}),
    ("overpaid: nothing", [invoice(MON, due=DUE), pay(TUE, "120")], LATER, {}),
    ("no due date: never overdue", [invoice(MON)], LATER, {}),
    ("summed per scope",
     [invoice(MON, due=DUE), invoice(TUE, ("2", "30", None), invoice_id="i-2", due=DUE),
      invoice(TUE, invoice_id="i-3", due=LATER)], LATER, {(UNASSIGNED, ""): Decimal(160)}),
]


@pytest.mark.parametrize(("events", "now", "expected"), [pytest.param(*c[1:], id=c[0]) for c in OVERDUE_CASES])
def test_overdue_snapshot(events: list[Event], now: float, expected: dict) -> None:
    assert cells(build(events).contributions("UTC", now), "overdue") == expected


@pytest.mark.parametrize(("events", "now", "expected"), [
    pytest.param([invoice(MON, due=DUE)], TUE, math.nextafter(DUE, math.inf), id="next due, just past it"),
    pytest.param([invoice(MON, due=DUE)], DUE, math.nextafter(DUE, math.inf), id="at the due instant"),
    pytest.param([invoice(MON, due=DUE)], LATER, None, id="already overdue"),
    pytest.param([invoice(MON, due=DUE), pay(TUE, "100")], TUE, None, id="paid"),
    pytest.param([invoice(MON, due=LATER), invoice(MON, invoice_id="i-2", due=DUE)], TUE,
                 math.nextafter(DUE, math.inf), id="earliest of several"),
])
def test_next_change_is_when_the_overdue_snapshot_changes(events: list[Event], now: float,
                                                          expected: float | None) -> None:
    state = build(events)
    assert state.next_change(now) == expected
    if expected is not None:  # the snapshot really differs on either side of it
        assert state.contributions("UTC", expected) != state.contributions("UTC", math.nextafter(expected, 0))


@pytest.mark.parametrize(("tz", "day"), [
    ("UTC", "2026-03-31"),
    ("Europe/Berlin", "2026-04-01"),  # summer time since 29 March: 22:30Z is 00:30 on 1 April
    ("America/Los_Angeles", "2026-03-31"),
])
def test_days_are_local_dates_in_the_configured_zone(tz: str, day: str) -> None:
    state = build([invoice(at("2026-03-31T22:30:00+00:00"))])
    assert cells(state.contributions(tz, 0.0), "orders") == {(UNASSIGNED, day): 1}


REFUSED = [
    ("same invoice id, another total", [invoice(MON)], invoice(MON, ("2", "100", None))),
    ("same invoice id, another date", [invoice(MON)], invoice(TUE)),
    ("same invoice id, another rep", [invoice(MON)], invoice(MON, rep="r-2")),
    ("same invoice id, a cost added", [invoice(MON)], invoice(MON, ("1", "100", "50"))),
    ("another customer's payment", [invoice(MON)], pay(TUE, "10", customer="c-2")),
    ("another customer's invoice", [invoice(MON)], invoice(TUE, invoice_id="i-2", customer="c-2")),
]


@pytest.mark.parametrize(("history", "event"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_refused_events_leave_the_state_unchanged(history: list[Event], event: Event) -> None:
    state = build(history)
    before = CUSTOMER.encode(state)
    assert state.apply(event) == "invalid_transition"
    assert CUSTOMER.encode(state) == before


def test_the_same_invoice_sent_again_changes_nothing() -> None:
    state = build([invoice(MON, ("2", "10.0", "4"), due=DUE), pay(TUE, "5")])
    before = CUSTOMER.encode(state)
    # Same content, another event id, prices written with other exponents.
    assert state.apply(invoice(MON, ("2", "10.00", "4.0"), due=DUE)) is None
    assert CUSTOMER.encode(state) == before


def test_contributions_are_a_pure_function_of_the_state() -> None:
    state = build([invoice(MON, rep="r-1", due=DUE), pay(TUE, "30"), credit(WED_16, "10")])
    first = state.contributions("UTC", LATER)
    assert state.contributions("UTC", LATER) == first
    assert CUSTOMER.decode(CUSTOMER.encode(state)).contributions("UTC", LATER) == first


def test_round_trip_is_exact() -> None:
    state = build([
        pay(MON, "0.10", invoice_id="i-2"),
        invoice(MON + 0.25, ("3", "33.3300", "10.005"), ("1", "0.01", None), rep="r-1", due=DUE),
        pay(TUE, "12.340"),
        credit(WED_16, "1.00"),
    ])
    restored = CUSTOMER.decode(CUSTOMER.encode(state))
    assert restored == state
    invoice_1 = restored.invoices["i-1"]
    # Decimals keep their exponent, not only their value.
    assert str(invoice_1.total) == "100.0000"  # 3 × 33.3300 + 1 × 0.01
    assert str(invoice_1.margin_with_cost) == "69.9750"  # 3 × (33.3300 − 10.005)
    assert [str(m.amount) for m in invoice_1.payments] == ["12.340"]
    assert str(restored.pending["i-2"].payments[0].amount) == "0.10"
