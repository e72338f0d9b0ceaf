"""Strict decoding of one input record into a typed event, or InvalidEvent with its DLQ reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow
from typing import Any, Union

import msgspec
from msgspec import UNSET

from kpi_state import events as ev
from kpi_state.errors import InvalidEvent
from streams import schemas as wire
from streams.currency import CONVERSION_CONTEXT, Rates
from streams.decode_checks import (  # MAX_NESTING: re-exported, callers import it from here
    MAX_NESTING,
    _check_json,
    _check_text,
    _has_duplicate_keys,
    _has_unicode_escape,
    _validation_error,
)


# A tagged union: msgspec picks the envelope struct by `type` within the same single pass.
_typed_union: Any = Union[wire.ENVELOPES]  # `X | Y` cannot be built from a tuple
_timestamp_shape = re.compile(wire.RFC3339_PATTERN)
_multiply = CONVERSION_CONTEXT.multiply
# The times an event may carry. The calendar reaches a year back from an event's day (the
# previous period of a year, a rolling window's start), and Python's dates end at year 1:
# a "no date" placeholder such as 0001-01-01T00:00:00Z (Go's zero time, common in exports)
# would pass the shape check and then crash every flush, again after every restart.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
_EARLIEST_TS, _LATEST_TS = EARLIEST.timestamp(), LATEST.timestamp()
# Σ quantity × unit_price must be exact to compare with a sent total: with the caps on
# both factors 100 digits always suffice unless a value carries absurd decimals, which
# Inexact then reports instead of silently rounding.
_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation, Overflow])
_ZERO = Decimal(0)


class Decoder:
    """Bytes of one record → one `kpi_state.events` event; any problem → InvalidEvent.

    Stage rule: `stage` (opportunity.created), `to_stage` and `from_stage` must be one
    of `stages`. `won` and `lost` are not stages: they have events of their own.
    """

    def __init__(
        self, *, stages: tuple[str, ...], rates: Rates, max_event_bytes: int = 65536
    ) -> None:
        if not stages or {"won", "lost"} & set(stages):
            raise ValueError("stages must be non-empty and must not contain won or lost")
        self._stages = frozenset(stages)
        self._rates = rates
        self._max_bytes = max_event_bytes
        self._typed = msgspec.json.Decoder(_typed_union)
        self._builders: dict[type, Callable[[Any], ev.Event]] = {
            wire.CallLoggedEnvelope: self._call_logged,
            wire.EmailSentEnvelope: self._email_sent,
            wire.MeetingBookedEnvelope: self._meeting_booked,
            wire.DemoCompletedEnvelope: self._demo_completed,
            wire.ProspectContactedEnvelope: self._prospect_contacted,
            wire.OpportunityCreatedEnvelope: self._opportunity_created,
            wire.OpportunityStageChangedEnvelope: self._opportunity_stage_changed,
            wire.OpportunityWonEnvelope: self._opportunity_won,
            wire.OpportunityLostEnvelope: self._opportunity_lost,
            wire.InvoiceIssuedEnvelope: self._invoice_issued,
            wire.PaymentReceivedEnvelope: self._payment_received,
            wire.CreditNoteIssuedEnvelope: self._credit_note_issued,
            wire.SpendRecordedEnvelope: self._spend_recorded,
            wire.RepUpsertedEnvelope: self._rep_upserted,
        }

    def decode(self, raw: bytes | None) -> ev.Event:
        """The event in `raw` (a Kafka record value); InvalidEvent(reason, detail) if unusable."""
        if raw is None:
            raise InvalidEvent("not_json", "record has no value")
        if len(raw) > self._max_bytes:
            raise InvalidEvent("too_large", f"record is larger than {self._max_bytes} bytes")
        _check_text(raw)
        try:
            envelope = self._typed.decode(raw)
        except msgspec.ValidationError as exc:
            # msgspec stops at the first schema error without reading the rest, so the
            # whole text is checked now: bad syntax and duplicate keys take precedence.
            _check_json(raw)
            raise _validation_error(exc) from None
        except msgspec.DecodeError:
            raise InvalidEvent("not_json", "malformed JSON") from None
        if _has_duplicate_keys(raw, envelope):
            raise InvalidEvent("not_json", "duplicate key in a JSON object")
        event = self._builders[type(envelope)](envelope)
        # A '|' (or an escape that could spell one) is rare: only then are the ids looked at.
        if b"|" in raw or _has_unicode_escape(raw):
            _check_scope_ids(event)
        return event

    # --- shared checks ---------------------------------------------------------------

    def _rate(self, currency: str) -> Decimal:
        try:
            return self._rates.rate(currency)
        except InvalidEvent as exc:
            raise InvalidEvent(exc.reason, f"data.currency: {exc.detail}") from None

    def _stage(self, stage: str, field: str) -> str:
        if stage not in self._stages:
            raise InvalidEvent("unknown_stage", f"data.{field}: not a configured stage")
        return stage

    # --- CRM ------------------------------------------------------------------------

    def _call_logged(self, env: wire.CallLoggedEnvelope) -> ev.CallLogged:
        d = env.data
        return ev.CallLogged(
            event_id=env.event_id,
            ts=_epoch(env.occurred_at, "occurred_at"),
            source=env.source or None,  # UNSET and None both mean "not sent"
            rep_id=d.rep_id,
            contact_id=d.contact_id or None,
            duration_s=None if d.duration_s is UNSET else d.duration_s,
            outcome=d.outcome or None,
        )

    def _email_sent(self, env: wire.EmailSentEnvelope) -> ev.EmailSent:
        d = env.data
        return ev.EmailSent(
            **_envelope_fields(env),
            rep_id=d.rep_id,
            contact_id=d.contact_id or None,
        )

    def _meeting_booked(self, env: wire.MeetingBookedEnvelope) -> ev.MeetingBooked:
        d = env.data
        return ev.MeetingBooked(
            **_envelope_fields(env),
            rep_id=d.rep_id,
            opportunity_id=d.opportunity_id or None,
            contact_id=d.contact_id or None,
        )

    def _demo_completed(self, env: wire.DemoCompletedEnvelope) -> ev.DemoCompleted:
        d = env.data
        return ev.DemoCompleted(
            **_envelope_fields(env),
            rep_id=d.rep_id,
            opportunity_id=d.opportunity_id or None,
        )

    def _prospect_contacted(self, env: wire.ProspectContactedEnvelope) -> ev.ProspectContacted:
        d = env.data
        return ev.ProspectContacted(
            **_envelope_fields(env),
            rep_id=d.rep_id,
            contact_id=d.contact_id,
        )

    def _opportunity_created(
        self, env: wire.OpportunityCreatedEnvelope
    ) -> ev.OpportunityCreated:
        d = env.data
        has_amount = d.amount is not UNSET and d.amount is not None
        currency = d.currency or None
        if has_amount != (currency is not None):
            missing = "currency" if has_amount else "amount"
            raise InvalidEvent("missing_field", f"data.{missing}: amount and currency go together")
        amount = original = None
        if has_amount:
            original = _money(d.amount, "data.amount")
            amount = _multiply(original, self._rate(currency))
        return ev.OpportunityCreated(
            **_envelope_fields(env),
            opportunity_id=d.opportunity_id,
            rep_id=d.rep_id,
            stage=self._stage(d.stage, "stage"),
            account_id=d.account_id or None,
            customer_id=d.customer_id or None,
            amount=amount,
            amount_original=original,
            currency=currency,
            product=d.product or None,
        )

    def _opportunity_stage_changed(
        self, env: wire.OpportunityStageChangedEnvelope
    ) -> ev.OpportunityStageChanged:
        d = env.data
        from_stage = d.from_stage or None
        return ev.OpportunityStageChanged(
            **_envelope_fields(env),
            opportunity_id=d.opportunity_id,
            rep_id=d.rep_id,
            to_stage=self._stage(d.to_stage, "to_stage"),
            from_stage=None if from_stage is None else self._stage(from_stage, "from_stage"),
        )

    def _opportunity_won(self, env: wire.OpportunityWonEnvelope) -> ev.OpportunityWon:
        d = env.data
        original = _money(d.amount, "data.amount")
        return ev.OpportunityWon(
            **_envelope_fields(env),
            opportunity_id=d.opportunity_id,
            rep_id=d.rep_id,
            amount=_multiply(original, self._rate(d.currency)),
            amount_original=original,
            currency=d.currency,
        )

    def _opportunity_lost(self, env: wire.OpportunityLostEnvelope) -> ev.OpportunityLost:
        d = env.data
        return ev.OpportunityLost(
            **_envelope_fields(env),
            opportunity_id=d.opportunity_id,
            rep_id=d.rep_id,
            reason=d.reason or None,
        )

    # --- billing ----------------------------------------------------------------------

    def _invoice_issued(self, env: wire.InvoiceIssuedEnvelope) -> ev.InvoiceIssued:
        d = env.data
        rate = self._rate(d.currency)
        lines = []
        gross = _ZERO
        for index, line in enumerate(d.lines):
            try:
                converted, line_gross = _invoice_line(line, rate)
                gross = _EXACT.add(gross, line_gross)
            except InvalidEvent as exc:
                # Field names are only spelled out on failure, keeping the loop lean.
                raise InvalidEvent(exc.reason, f"data.lines[{index}].{exc.detail}") from None
            except DecimalException:
                raise InvalidEvent("bad_value", "data.lines: too many significant digits") from None
            lines.append(converted)
        total = d.total
        if total is not UNSET and total is not None:
            if _money(total, "data.total") != gross:
                raise InvalidEvent(
                    "inconsistent_total", "data.total: differs from Σ quantity × unit_price"
                )
        elif gross > wire.MONEY_CAP:
            raise InvalidEvent("bad_value", "data.lines: invoice total is above the cap")
        due_at = d.due_at or None
        return ev.InvoiceIssued(
            **_envelope_fields(env),
            invoice_id=d.invoice_id,
            customer_id=d.customer_id,
            currency=d.currency,
            lines=tuple(lines),
            total=_multiply(gross, rate),
            total_original=gross,
            rep_id=d.rep_id or None,
            due_ts=None if due_at is None else _epoch(due_at, "data.due_at"),
        )

    def _payment_received(self, env: wire.PaymentReceivedEnvelope) -> ev.PaymentReceived:
        d = env.data
        original = _money(d.amount, "data.amount", positive=True)
        return ev.PaymentReceived(
            **_envelope_fields(env),
            invoice_id=d.invoice_id,
            customer_id=d.customer_id,
            amount=_multiply(original, self._rate(d.currency)),
            amount_original=original,
            currency=d.currency,
        )

    def _credit_note_issued(self, env: wire.CreditNoteIssuedEnvelope) -> ev.CreditNoteIssued:
        d = env.data
        original = _money(d.amount, "data.amount", positive=True)
        return ev.CreditNoteIssued(
            **_envelope_fields(env),
            invoice_id=d.invoice_id,
            customer_id=d.customer_id,
            amount=_multiply(original, self._rate(d.currency)),
            amount_original=original,
            currency=d.currency,
        )

    def _spend_recorded(self, env: wire.SpendRecordedEnvelope) -> ev.SpendRecorded:
        d = env.data
        original = _money(d.amount, "data.amount", positive=True)
        return ev.SpendRecorded(
            **_envelope_fields(env),
            amount=_multiply(original, self._rate(d.currency)),
            amount_original=original,
            currency=d.currency,
            category=d.category,
            channel=d.channel or None,
            team_id=d.team_id or None,
        )

    def _rep_upserted(self, env: wire.RepUpsertedEnvelope) -> ev.RepUpserted:
        d = env.data
        return ev.RepUpserted(
            **_envelope_fields(env),
            rep_id=d.rep_id,
            team_id=d.team_id,
            region_id=d.region_id,
            name=d.name or None,
            manager=d.manager or None,
        )


# --- values --------------------------------------------------------------------------


_SCOPE_ID_FIELDS = ("rep_id", "team_id", "region_id")


def _check_scope_ids(event: ev.Event) -> None:
    """Ids that name a scope must not hold the '|' that separates the parts of a KPI key."""
    # `calls|rep:a|b|all|` would read as rep `a` and window `b`; two scopes could share a key.
    for field in _SCOPE_ID_FIELDS:
        value = getattr(event, field, None)
        if value and "|" in value:
            raise InvalidEvent("bad_value", f"data.{field}: must not contain '|' (it separates a KPI key's parts)")


def _envelope_fields(env: Any) -> dict[str, Any]:
    """The fields every domain event takes from its envelope."""
    return {
        "event_id": env.event_id,
        "ts": _epoch(env.occurred_at, "occurred_at"),
        "source": env.source or None,
    }


def _epoch(text: str, field: str) -> float:
    """RFC 3339 with an offset → epoch seconds; naive, date-only or impossible → bad_value."""
    if _timestamp_shape.fullmatch(text) is None:
        raise InvalidEvent("bad_value", f"{field}: not an RFC 3339 date-time with an offset")
    try:
        # upper(): RFC 3339 allows a lower-case t and z, fromisoformat does not.
        ts = datetime.fromisoformat(text.upper()).timestamp()
    except (ValueError, OverflowError):
        raise InvalidEvent("bad_value", f"{field}: not a valid date-time") from None
    if not _EARLIEST_TS <= ts < _LATEST_TS:
        raise InvalidEvent(
            "bad_value", f"{field}: outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (a placeholder date?)"
        )
    return ts


def _money(
    value: Decimal, field: str, *, positive: bool = False, cap: Decimal = wire.MONEY_CAP
) -> Decimal:
    # is_finite first: ordering comparisons on NaN raise instead of answering.
    if not value.is_finite():
        raise InvalidEvent("bad_value", f"{field}: not a finite number")
    if value > cap:
        raise InvalidEvent("bad_value", f"{field}: above the cap of {cap:,}")
    if value < 0 or (positive and not value):
        raise InvalidEvent("bad_value", f"{field}: must be {'> 0' if positive else '>= 0'}")
    return value


def _invoice_line(line: wire.InvoiceLineData, rate: Decimal) -> tuple[ev.InvoiceLine, Decimal]:
    """The converted line and its exact quantity × unit_price in the invoice's currency."""
    quantity = _money(line.quantity, "quantity", positive=True, cap=wire.QUANTITY_CAP)
    price = _money(line.unit_price, "unit_price")
    cost = line.unit_cost
    if cost is UNSET or cost is None:
        cost = cost_converted = None
    else:
        cost = _money(cost, "unit_cost")
        cost_converted = _multiply(cost, rate)
    converted = ev.InvoiceLine(
        sku=line.sku,
        quantity=quantity,
        unit_price=_multiply(price, rate),
        unit_price_original=price,
        unit_cost=cost_converted,
        unit_cost_original=cost,
    )
    return converted, _EXACT.multiply(quantity, price)
