"""The typed domain events the decoder produces: money as Decimal, time as epoch seconds."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, TypeAlias

import msgspec


class _Event(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="type"):
    """Fields every event has. `ts` is occurred_at as epoch seconds (UTC)."""

    # `type` is a class constant (not a field) so `event.type` reads without a lookup;
    # the msgspec tag writes the same string when an event is encoded, so that
    # `msgspec.json.decode(data, type=Event)` picks the right class back.
    type: ClassVar[str]

    event_id: str
    ts: float
    source: str | None = None


# --- CRM: activities -------------------------------------------------------------


class CallLogged(_Event, tag="call.logged"):
    type: ClassVar[str] = "call.logged"
    rep_id: str
    contact_id: str | None = None
    duration_s: float | None = None
    outcome: str | None = None


class EmailSent(_Event, tag="email.sent"):
    type: ClassVar[str] = "email.sent"
    rep_id: str
    contact_id: str | None = None


class MeetingBooked(_Event, tag="meeting.booked"):
    type: ClassVar[str] = "meeting.booked"
    rep_id: str
    opportunity_id: str | None = None
    contact_id: str | None = None


class DemoCompleted(_Event, tag="demo.completed"):
    type: ClassVar[str] = "demo.completed"
    rep_id: str
    opportunity_id: str | None = None


class ProspectContacted(_Event, tag="prospect.contacted"):
    type: ClassVar[str] = "prospect.contacted"
    rep_id: str
    contact_id: str


# --- CRM: opportunities ----------------------------------------------------------


class OpportunityCreated(_Event, tag="opportunity.created"):
    """`amount`, `amount_original` and `currency` are all set or all None."""

    type: ClassVar[str] = "opportunity.created"
    opportunity_id: str
    rep_id: str
    stage: str
    account_id: str | None = None
    customer_id: str | None = None
    amount: Decimal | None = None
    amount_original: Decimal | None = None
    currency: str | None = None
    product: str | None = None


class OpportunityStageChanged(_Event, tag="opportunity.stage_changed"):
    type: ClassVar[str] = "opportunity.stage_changed"
    opportunity_id: str
    rep_id: str
    to_stage: str
    from_stage: str | None = None


class OpportunityWon(_Event, tag="opportunity.won"):
    type: ClassVar[str] = "opportunity.won"
    opportunity_id: str
    rep_id: str
    amount: Decimal
    amount_original: Decimal
    currency: str


class OpportunityLost(_Event, tag="opportunity.lost"):
    type: ClassVar[str] = "opportunity.lost"
    opportunity_id: str
    rep_id: str
    reason: str | None = None


# --- billing ---------------------------------------------------------------------


class InvoiceLine(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One invoice line; prices in the reporting currency, `*_original` in the invoice's."""

    sku: str
    quantity: Decimal
    unit_price: Decimal
    unit_price_original: Decimal
    unit_cost: Decimal | None = None
    unit_cost_original: Decimal | None = None


class InvoiceIssued(_Event, tag="invoice.issued"):
    """`total` is Σ quantity × unit_price (checked against the sent total when there is one)."""

    type: ClassVar[str] = "invoice.issued"
    invoice_id: str
    customer_id: str
    currency: str
    lines: tuple[InvoiceLine, ...]
    total: Decimal
    total_original: Decimal
    rep_id: str | None = None
    due_ts: float | None = None


class PaymentReceived(_Event, tag="payment.received"):
    type: ClassVar[str] = "payment.received"
    invoice_id: str
    customer_id: str
    amount: Decimal
    amount_original: Decimal
    currency: str


class CreditNoteIssued(_Event, tag="credit_note.issued"):
    type: ClassVar[str] = "credit_note.issued"
    invoice_id: str
    customer_id: str
    amount: Decimal
    amount_original: Decimal
    currency: str


class SpendRecorded(_Event, tag="spend.recorded"):
    """`category` is `marketing` or `sales`."""

    type: ClassVar[str] = "spend.recorded"
    amount: Decimal
    amount_original: Decimal
    currency: str
    category: str
    channel: str | None = None
    team_id: str | None = None


# --- reference data --------------------------------------------------------------


class RepUpserted(_Event, tag="rep.upserted"):
    type: ClassVar[str] = "rep.upserted"
    rep_id: str
    team_id: str
    region_id: str
    name: str | None = None
    manager: str | None = None


Event: TypeAlias = (
    CallLogged
    | EmailSent
    | MeetingBooked
    | DemoCompleted
    | ProspectContacted
    | OpportunityCreated
    | OpportunityStageChanged
    | OpportunityWon
    | OpportunityLost
    | InvoiceIssued
    | PaymentReceived
    | CreditNoteIssued
    | SpendRecorded
    | RepUpserted
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in Event.__args__  # type: ignore[attr-defined]
}
