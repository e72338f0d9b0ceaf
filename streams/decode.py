"""Strict decoding of one input record into a typed event, or InvalidEvent with its DLQ reason."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow
from typing import Any, Union

import msgspec
from msgspec import UNSET

from kpi_state import events as ev
from kpi_state.errors import InvalidEvent
from streams import schemas as wire
from streams.currency import CONVERSION_CONTEXT, Rates

# Deeper than any record the contract defines (envelope → data → lines → line is 4);
# a fixed limit makes the outcome independent of the caller's stack depth.
MAX_NESTING = 32
_DETAIL_CHARS = 200

# A tagged union: msgspec picks the envelope struct by `type` within the same single pass.
_typed_union: Any = Union[wire.ENVELOPES]  # `X | Y` cannot be built from a tuple
# Untyped decode for the slow paths only; float_hook keeps huge numbers from failing.
_any_json = msgspec.json.Decoder(float_hook=Decimal)
_encode = msgspec.json.Encoder().encode
_timestamp_shape = re.compile(wire.RFC3339_PATTERN)
_json_string = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_not_bracket = re.compile(rb"[^\[\]{}]+")
_innermost_pair = re.compile(rb"\{\}|\[\]")
_multiply = CONVERSION_CONTEXT.multiply
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
        return self._builders[type(envelope)](envelope)

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
        return datetime.fromisoformat(text.upper()).timestamp()
    except (ValueError, OverflowError):
        raise InvalidEvent("bad_value", f"{field}: not a valid date-time") from None


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


# --- JSON-level checks ------------------------------------------------------------------


def _check_text(raw: bytes) -> None:
    """UTF-8 and nesting depth, both cheap to rule out before parsing."""
    # msgspec validates UTF-8 only in strings it materialises, not in skipped fields.
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("not_json", "not valid UTF-8") from None
    # Depth can't exceed the number of opening brackets, so the exact scan is only
    # needed for records with many of them (e.g. long invoices).
    if raw.count(b"{") + raw.count(b"[") > MAX_NESTING and _nesting_exceeds(raw):
        raise InvalidEvent("not_json", f"nested deeper than {MAX_NESTING} levels or unbalanced")


def _nesting_exceeds(raw: bytes) -> bool:
    brackets = _not_bracket.sub(b"", _json_string.sub(b"", raw))
    # Each pass removes exactly one level (re.sub does not rescan what it produced).
    for _ in range(MAX_NESTING):
        if not brackets:
            return False
        brackets = _innermost_pair.sub(b"", brackets)
    return bool(brackets)


def _check_json(raw: bytes) -> None:
    """Slow path after a schema error: is it JSON at all, an object, free of duplicate keys?"""
    try:
        document = _any_json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidEvent("not_json", "malformed JSON") from None
    if not isinstance(document, dict):
        raise InvalidEvent("not_object", "the record is not a JSON object")
    if _duplicates_in(raw, document):
        raise InvalidEvent("not_json", "duplicate key in a JSON object")


# Duplicate keys: msgspec keeps the last value silently, so they are found by counting.
# Every ':' in a JSON text is either a key separator or a literal ':' inside a string.
# Re-encoding what was decoded writes each surviving key once and every string's ':'
# again (msgspec never escapes ':'); a duplicate key makes the original text have more
# ':' than the re-encoding. Only a \u escape can make a ':' appear in a decoded string
# without one in the text, so texts containing "\u" take the exact but slower path.
#   1. the typed envelope re-encodes exactly the keys sent, as optional fields default to
#      UNSET: equal counts prove there is no duplicate (extra fields make it inconclusive);
#   2. an untyped decode keeps every distinct key, extras included: equality is exact;
#   3. with \u escapes, Python's json with an object_pairs_hook sees every key.


def _has_duplicate_keys(raw: bytes, envelope: msgspec.Struct) -> bool:
    if _has_unicode_escape(raw):
        return _duplicates_by_pairs(raw)
    colons = raw.count(b":")
    if colons == _encode(envelope).count(b":"):
        return False
    return colons != _encode(_any_json.decode(raw)).count(b":")


def _duplicates_in(raw: bytes, document: dict[str, Any]) -> bool:
    if _has_unicode_escape(raw):
        return _duplicates_by_pairs(raw)
    return raw.count(b":") != _encode(document).count(b":")


def _has_unicode_escape(raw: bytes) -> bool:
    # A one-byte search first: most records have no backslash at all.
    return raw.find(b"\\") >= 0 and b"\\u" in raw


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _DuplicateKey
    # Values are never used: returning None keeps this pass cheap.


def _duplicates_by_pairs(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except _DuplicateKey:
        return True
    except ValueError:
        # msgspec accepted the text already; should the two parsers ever disagree, the
        # record is still refused as data rather than escaping as an exception.
        raise InvalidEvent("not_json", "malformed JSON") from None
    return False


# --- msgspec errors → reason codes ------------------------------------------------------

_MISSING = re.compile(r"Object missing required field `([^`]+)`")


def _validation_error(exc: msgspec.ValidationError) -> InvalidEvent:
    """Map msgspec's message to a reason; the detail keeps the path, never the value."""
    message, _, where = str(exc).partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    missing = _MISSING.fullmatch(message)
    if missing:
        field = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return InvalidEvent("missing_field", f"{field}: required field is missing")
    if path == "type":
        if message.startswith("Invalid value"):
            return InvalidEvent("unknown_type", "type: not a known event type")
        return InvalidEvent("bad_type", "type: expected a string")
    if not path:
        return InvalidEvent("not_object", "the record is not a JSON object")
    if message.endswith(", got `null`") and not path.endswith("]"):
        # null reads as "not sent", as it does for optional fields.
        return InvalidEvent("missing_field", f"{path}: required field is null")
    reason = "bad_type" if ", got `" in message else "bad_value"
    return InvalidEvent(reason, f"{path}: {_safe(message)}"[:_DETAIL_CHARS])


def _safe(message: str) -> str:
    """msgspec's wording without any payload value (which it quotes when it shows one)."""
    if message.startswith(("Invalid value", "Invalid enum value")):
        return "not one of the allowed values"
    if "'" in message or '"' in message:
        return "invalid value"
    return message[:1].lower() + message[1:]
