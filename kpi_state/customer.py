"""One customer's invoices, payments and credit notes, and the billing components they add."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec

from kpi_state.contributions import (
    INVALID_TRANSITION,
    SNAPSHOT,
    Attribution,
    Contribution,
    DayCache,
    billing_attribution,
    days_between,
)
from kpi_state.entity import HELD, ORPHANED, Judged, Withdrawn
from kpi_state.events import CreditNoteIssued, Event, InvoiceIssued, PaymentReceived

_ZERO = Decimal(0)


class Movement(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A payment or credit note against an invoice (reporting currency).

    While it waits for its invoice it keeps its original record, to be dead-lettered as
    `orphaned` if the invoice never comes within the lateness horizon.
    """

    ts: float
    amount: Decimal
    raw: bytes | None = None

    def settled(self) -> Movement:
        return Movement(self.ts, self.amount) if self.raw is not None else self


class Pending(msgspec.Struct, gc=False):
    """Payments and credit notes for an invoice not seen yet: they count once it arrives."""

    payments: list[Movement] = msgspec.field(default_factory=list)
    credits: list[Movement] = msgspec.field(default_factory=list)

    @property
    def movements(self) -> list[Movement]:
        return self.payments + self.credits


class Invoice(msgspec.Struct, kw_only=True, gc=False):
    """What the KPIs need of one invoice: its lines summed, its movements, when it was settled."""

    issued_ts: float
    due_ts: float | None
    rep_id: str | None
    total: Decimal  # Σ quantity × unit_price
    units: Decimal  # Σ quantity
    costed: bool  # whether any line carries a unit cost
    gross_with_cost: Decimal  # Σ quantity × unit_price over lines with a cost
    margin_with_cost: Decimal  # Σ quantity × (unit_price − unit_cost) over the same lines
    payments: list[Movement] = msgspec.field(default_factory=list)
    credits: list[Movement] = msgspec.field(default_factory=list)
    paid_ts: float | None = None  # fully paid: payments ≥ total − credit notes
    # The issuing event: another invoice under the same id dated before it replaces it.
    event_id: str = ""
    raw: bytes | None = None  # its record, until past the lateness horizon

    @classmethod
    def of(cls, event: InvoiceIssued, raw: bytes | None = None) -> Invoice:
        lines = event.lines
        costed = [(line.quantity, line.unit_price, line.unit_cost) for line in lines if line.unit_cost is not None]
        return cls(
            issued_ts=event.ts,
            due_ts=event.due_ts,
            rep_id=event.rep_id,
            total=event.total,
            units=sum((line.quantity for line in lines), _ZERO),
            costed=bool(costed),
            gross_with_cost=sum((q * price for q, price, _ in costed), _ZERO),
            margin_with_cost=sum((q * (price - cost) for q, price, cost in costed), _ZERO),
            event_id=event.event_id,
            raw=raw,
        )

    def same_as(self, other: Invoice) -> bool:
        """Equal in everything a KPI reads (movements aside): a resend changes nothing."""
        return (
            self.issued_ts == other.issued_ts
            and self.due_ts == other.due_ts
            and self.rep_id == other.rep_id
            and self.total == other.total
            and self.units == other.units
            and self.costed == other.costed
            and self.gross_with_cost == other.gross_with_cost
            and self.margin_with_cost == other.margin_with_cost
        )

    @property
    def attribution(self) -> Attribution:
        return billing_attribution(self.rep_id)

    @property
    def outstanding(self) -> Decimal:
        """total − credit notes − payments (negative once overpaid)."""
        settled = sum((m.amount for m in self.payments), _ZERO) + sum((m.amount for m in self.credits), _ZERO)
        return self.total - settled

    def settle(self) -> None:
        """Recompute `paid_ts` by event time, whatever order the movements arrived in.

        payments ≥ total − credits is Σ(payments + credits) ≥ total: walk both in time
        order and stop at the first movement that closes the gap. An invoice cannot be
        paid before it exists, so a prepayment settles it at its issue time; one with
        nothing to pay (total 0) is settled at issue.
        """
        self.paid_ts = None
        if self.total <= 0:
            self.paid_ts = self.issued_ts
            return
        covered = _ZERO
        for movement in sorted(self.payments + self.credits, key=lambda m: m.ts):
            covered += movement.amount
            if covered >= self.total:
                self.paid_ts = max(movement.ts, self.issued_ts)
                return


class CustomerState(msgspec.Struct, kw_only=True):
    """Every invoice of one customer by id, plus movements waiting for their invoice.

    Overpayment is accepted: a payment or credit note larger than what is still owed is
    recorded in full, and only makes the invoice fully paid (outstanding goes negative,
    which no component reads: overdue counts invoices not fully paid only).
    """

    customer_id: str
    invoices: dict[str, Invoice] = msgspec.field(default_factory=dict)
    pending: dict[str, Pending] = msgspec.field(default_factory=dict)
    first_invoice_id: str | None = None  # earliest by (issue ts, invoice id)

    @classmethod
    def start(cls, event: Event) -> tuple[CustomerState | None, str | None]:
        """A new customer from its first billing event (of any billing type)."""
        customer_id = getattr(event, "customer_id", None)
        if not isinstance(customer_id, str):
            return None, INVALID_TRANSITION
        state = cls(customer_id=customer_id)
        reason = state.apply(event)
        return (None, reason) if reason is not None else (state, None)

    @classmethod
    def of(cls, event: Event) -> CustomerState:
        return cls(customer_id=event.customer_id)  # type: ignore[union-attr]

    @property
    def first_invoice_ts(self) -> float | None:
        first = self.first_invoice_id
        return None if first is None else self.invoices[first].issued_ts

    @property
    def held(self) -> int:
        """Payments and credit notes waiting for their invoice."""
        return sum(len(p.payments) + len(p.credits) for p in self.pending.values())

    # --- events -----------------------------------------------------------------------
    def add(self, event: Event, raw: bytes | None = None) -> Judged:
        """Apply a billing event: counted (verdict None), held until its invoice, or refused."""
        if getattr(event, "customer_id", None) != self.customer_id:
            return Judged(INVALID_TRANSITION)  # routed to the wrong entity
        if isinstance(event, InvoiceIssued):
            return self._issue(event, raw)
        if isinstance(event, (PaymentReceived, CreditNoteIssued)):
            movement = Movement(event.ts, event.amount, raw)
            return Judged(self._move(event.invoice_id, movement, credit=isinstance(event, CreditNoteIssued)))
        return Judged(INVALID_TRANSITION)

    def apply(self, event: Event) -> str | None:
        """`add` without the record: None when counted or held, else a DLQ reason."""
        verdict = self.add(event).verdict
        return None if verdict == HELD else verdict

    def _issue(self, event: InvoiceIssued, raw: bytes | None) -> Judged:
        invoice = Invoice.of(event, raw)
        known = self.invoices.get(event.invoice_id)
        if known is not None:
            # The same invoice sent again (under another event id) is harmless. Another
            # invoice under a known id: the one dated first (ties by event id) is the invoice.
            if known.same_as(invoice):
                return Judged(None)
            if (invoice.issued_ts, invoice.event_id) > (known.issued_ts, known.event_id) or known.raw is None:
                return Judged(INVALID_TRANSITION)
            invoice.payments, invoice.credits = known.payments, known.credits
            invoice.settle()
            self.invoices[event.invoice_id] = invoice
            self._find_first()
            return Judged(None, [Withdrawn(known.raw, INVALID_TRANSITION, known.issued_ts)])
        waiting = self.pending.pop(event.invoice_id, None)
        if waiting is not None:
            invoice.payments = [m.settled() for m in waiting.payments]
            invoice.credits = [m.settled() for m in waiting.credits]
        invoice.settle()
        self.invoices[event.invoice_id] = invoice
        self._maybe_first(event.invoice_id, invoice)
        return Judged(None)

    def _move(self, invoice_id: str, movement: Movement, *, credit: bool) -> str | None:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            waiting = self.pending.get(invoice_id)
            if waiting is None:
                waiting = self.pending[invoice_id] = Pending()
            (waiting.credits if credit else waiting.payments).append(movement)
            return HELD
        (invoice.credits if credit else invoice.payments).append(movement.settled())
        invoice.settle()
        return None

    # --- the lateness horizon -----------------------------------------------------------
    def next_expiry(self, lateness_s: float) -> float | None:
        """When the oldest record still kept passes the horizon."""
        times = [m.ts for p in self.pending.values() for m in p.movements]
        times += [i.issued_ts for i in self.invoices.values() if i.raw is not None]
        return min(times) + lateness_s if times else None

    def expire(self, cutoff: float) -> list[Withdrawn]:
        """Movements still waiting for their invoice past `cutoff` are orphaned; invoices settle."""
        orphaned: list[Withdrawn] = []
        for invoice_id, waiting in list(self.pending.items()):
            for movements in (waiting.payments, waiting.credits):
                orphaned += [Withdrawn(m.raw, ORPHANED, m.ts) for m in movements if m.ts < cutoff]
                movements[:] = [m for m in movements if m.ts >= cutoff]
            if not waiting.payments and not waiting.credits:
                del self.pending[invoice_id]
        for invoice in self.invoices.values():
            if invoice.raw is not None and invoice.issued_ts < cutoff:
                invoice.raw = None
        return orphaned

    def _find_first(self) -> None:
        self.first_invoice_id = min(
            self.invoices, key=lambda i: (self.invoices[i].issued_ts, i), default=None
        )

    def _maybe_first(self, invoice_id: str, invoice: Invoice) -> None:
        # First by event time, not arrival: an earlier-dated invoice arriving later takes over.
        first = self.first_invoice_id
        if first is None or (invoice.issued_ts, invoice_id) < (self.invoices[first].issued_ts, first):
            self.first_invoice_id = invoice_id

    # --- components -------------------------------------------------------------------
    def contributions(self, tz: str, now: float) -> list[Contribution]:
        """Everything this customer adds; pure in the state and `now` (the newest event time)."""
        day = DayCache(tz)
        out: list[Contribution] = []
        invoiced_cells: set[tuple[Attribution, str]] = set()
        overdue: dict[Attribution, Decimal] = {}
        for invoice_id, invoice in self.invoices.items():
            attribution, issued_day = invoice.attribution, day(invoice.issued_ts)
            out.extend(_issued(invoice, attribution, issued_day))
            out.extend(_settled(invoice, attribution, day))
            if invoice_id == self.first_invoice_id:
                out.append(Contribution("new_customers", attribution, issued_day))
            invoiced_cells.add((attribution, issued_day))
            if _is_overdue(invoice, now):
                overdue[attribution] = overdue.get(attribution, _ZERO) + invoice.outstanding
        # One distinct id per cell is enough: the cell counts customers, not invoices.
        out.extend(
            Contribution("customers_invoiced", attribution, issued_day, (), 1, self.customer_id)
            for attribution, issued_day in sorted(invoiced_cells)
        )
        out.extend(
            Contribution("overdue", attribution, SNAPSHOT, (), amount)
            for attribution, amount in sorted(overdue.items())
        )
        return out

    def next_change(self, now: float) -> float | None:
        """The first instant after `now` at which an unpaid invoice turns overdue (due_ts < now)."""
        upcoming = [
            invoice.due_ts
            for invoice in self.invoices.values()
            if invoice.paid_ts is None and invoice.due_ts is not None and invoice.due_ts >= now
        ]
        # Overdue is strictly after the due instant: the next representable time past it.
        return math.nextafter(min(upcoming), math.inf) if upcoming else None


def _issued(invoice: Invoice, attribution: Attribution, day: str) -> list[Contribution]:
    out = [
        Contribution("orders", attribution, day),
        Contribution("invoiced", attribution, day, (), invoice.total),
        Contribution("units", attribution, day, (), invoice.units),
    ]
    if invoice.costed:
        out.append(Contribution("gross_with_cost", attribution, day, (), invoice.gross_with_cost))
        out.append(Contribution("margin_with_cost", attribution, day, (), invoice.margin_with_cost))
    return out


def _settled(invoice: Invoice, attribution: Attribution, day: DayCache) -> list[Contribution]:
    out = [Contribution("credited", attribution, day(m.ts), (), m.amount) for m in invoice.credits]
    if invoice.paid_ts is not None:
        paid_day = day(invoice.paid_ts)
        out.append(Contribution("paid_days_sum", attribution, paid_day, (),
                                days_between(invoice.issued_ts, invoice.paid_ts)))
        out.append(Contribution("paid_count", attribution, paid_day))
    return out


def _is_overdue(invoice: Invoice, now: float) -> bool:
    return invoice.paid_ts is None and invoice.due_ts is not None and invoice.due_ts < now
