"""Decoder: every event type's happy path, exact money, and every bad-input reason code."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kpi_state import events as ev
from kpi_state.errors import InvalidEvent
from streams.currency import Rates
from streams.decode import MAX_NESTING, Decoder
from streams.settings import DEFAULT_STAGES

T0 = "2026-11-28T09:15:00Z"
T0_EPOCH = 1795857300.0
# An email.sent envelope up to its data, for records that must be written byte by byte.
OK_HEAD = b'{"event_id":"e","type":"email.sent","occurred_at":"2026-11-28T09:15:00Z",'


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(stages=DEFAULT_STAGES, rates=Rates())


def record(event_type: str, data: Any, **envelope: Any) -> bytes:
    body = {"event_id": "e-1", "type": event_type, "occurred_at": T0, "data": data}
    body.update(envelope)
    return json.dumps(body).encode()


def rejected(decoder: Decoder, raw: bytes | None) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as err:
        decoder.decode(raw)
    return err.value


# --- happy paths ----------------------------------------------------------------------

LINE = {"sku": "s-1", "quantity": 2, "unit_price": "10.50", "unit_cost": "4"}

HAPPY = [
    (
        "call.logged",
        {"rep_id": "r-1", "contact_id": "c-1", "duration_s": 240, "outcome": "connected"},
        ev.CallLogged,
        {"rep_id": "r-1", "contact_id": "c-1", "duration_s": 240.0, "outcome": "connected"},
    ),
    ("call.logged", {"rep_id": "r-1"}, ev.CallLogged, {"contact_id": None, "duration_s": None}),
    ("email.sent", {"rep_id": "r-1", "contact_id": "c-1"}, ev.EmailSent, {"contact_id": "c-1"}),
    (
        "meeting.booked",
        {"rep_id": "r-1", "opportunity_id": "o-1", "contact_id": "c-1"},
        ev.MeetingBooked,
        {"opportunity_id": "o-1", "contact_id": "c-1"},
    ),
    ("demo.completed", {"rep_id": "r-1", "opportunity_id": "o-1"}, ev.DemoCompleted,
     {"opportunity_id": "o-1"}),
    ("prospect.contacted", {"rep_id": "r-1", "contact_id": "c-1"}, ev.ProspectContacted,
     {"contact_id": "c-1"}),
    (
        "opportunity.created",
        {"opportunity_id": "o-1", "rep_id": "r-1", "stage": "prospecting", "account_id": "a-1",
         "customer_id": "cu-1", "amount": "1000", "currency": "USD", "product": "pro"},
        ev.OpportunityCreated,
        {"stage": "prospecting", "amount": Decimal("920"), "amount_original": Decimal("1000"),
         "currency": "USD", "account_id": "a-1", "customer_id": "cu-1", "product": "pro"},
    ),
    (
        "opportunity.created",
        {"opportunity_id": "o-1", "rep_id": "r-1", "stage": "negotiation"},
        ev.OpportunityCreated,
        {"amount": None, "amount_original": None, "currency": None},
    ),
    (
        "opportunity.stage_changed",
        {"opportunity_id": "o-1", "rep_id": "r-1", "from_stage": "qualified", "to_stage": "demo"},
        ev.OpportunityStageChanged,
        {"from_stage": "qualified", "to_stage": "demo"},
    ),
    (
        "opportunity.stage_changed",
        {"opportunity_id": "o-1", "rep_id": "r-1", "to_stage": "proposal"},
        ev.OpportunityStageChanged,
        {"from_stage": None, "to_stage": "proposal"},
    ),
    (
        "opportunity.won",
        {"opportunity_id": "o-1", "rep_id": "r-1", "amount": 5000, "currency": "GBP"},
        ev.OpportunityWon,
        {"amount": Decimal("5850"), "amount_original": Decimal("5000"), "currency": "GBP"},
    ),
    (
        "opportunity.lost",
        {"opportunity_id": "o-1", "rep_id": "r-1", "reason": "price"},
        ev.OpportunityLost,
        {"reason": "price"},
    ),
    (
        "invoice.issued",
        {"invoice_id": "i-1", "customer_id": "cu-1", "currency": "EUR", "lines": [LINE],
         "rep_id": "r-1", "due_at": "2026-12-28T00:00:00+01:00", "total": "21.00"},
        ev.InvoiceIssued,
        {"total": Decimal("21"), "total_original": Decimal("21"), "rep_id": "r-1",
         "due_ts": 1798412400.0, "currency": "EUR"},
    ),
    (
        "payment.received",
        {"invoice_id": "i-1", "customer_id": "cu-1", "amount": "10.25", "currency": "EUR"},
        ev.PaymentReceived,
        {"amount": Decimal("10.25"), "amount_original": Decimal("10.25")},
    ),
    (
        "credit_note.issued",
        {"invoice_id": "i-1", "customer_id": "cu-1", "amount": 3, "currency": "USD"},
        ev.CreditNoteIssued,
        {"amount": Decimal("2.76"), "amount_original": Decimal("3"), "currency": "USD"},
    ),
    (
        "spend.recorded",
        {"amount": "250", "currency": "EUR", "category": "marketing", "channel": "ads", "team_id": "t-1"},
        ev.SpendRecorded,
        {"amount": Decimal("250"), "category": "marketing", "channel": "ads", "team_id": "t-1"},
    ),
    ("spend.recorded", {"amount": 1, "currency": "EUR", "category": "sales"}, ev.SpendRecorded,
     {"team_id": None, "channel": None}),
    (
        "rep.upserted",
        {"rep_id": "r-1", "team_id": "t-1", "region_id": "emea", "name": "Ann", "manager": "Bo"},
        ev.RepUpserted,
        {"rep_id": "r-1", "team_id": "t-1", "region_id": "emea", "name": "Ann", "manager": "Bo"},
    ),
]


@pytest.mark.parametrize(("event_type", "data", "cls", "expected"), HAPPY)
def test_every_type_decodes(
    decoder: Decoder, event_type: str, data: dict[str, Any], cls: type, expected: dict[str, Any]
) -> None:
    event = decoder.decode(record(event_type, data, source="crm", schema_version=1))
    assert type(event) is cls
    assert event.type == event_type
    assert (event.event_id, event.ts, event.source) == ("e-1", T0_EPOCH, "crm")
    for field, value in expected.items():
        assert getattr(event, field) == value, field


def test_every_contract_type_has_a_happy_case() -> None:
    assert {case[0] for case in HAPPY} == set(ev.EVENT_TYPES)


def test_invoice_lines_are_converted_and_keep_originals() -> None:
    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates())
    event = decoder.decode(record("invoice.issued", {
        "invoice_id": "i-1", "customer_id": "cu-1", "currency": "USD",
        "lines": [{"sku": "a", "quantity": "1.5", "unit_price": 100, "unit_cost": "40"},
                  {"sku": "b", "quantity": 3, "unit_price": "0.10"}],
    }))
    assert isinstance(event, ev.InvoiceIssued)
    first, second = event.lines
    assert (first.sku, first.quantity, first.unit_price, first.unit_price_original) == (
        "a", Decimal("1.5"), Decimal("92"), Decimal("100"))
    assert (first.unit_cost, first.unit_cost_original) == (Decimal("36.8"), Decimal("40"))
    assert (second.unit_cost, second.unit_cost_original) == (None, None)
    assert event.total_original == Decimal("150.30")
    assert event.total == Decimal("138.276")
    assert event.due_ts is None and event.rep_id is None


# --- money: Decimal all the way -----------------------------------------------------------

@pytest.mark.parametrize(
    ("amount_json", "expected"),
    [
        ("0.1", "0.1"),
        ('"0.1"', "0.1"),
        ("123456789012.345678901", "123456789012.345678901"),
        ('"123456789012.345678901"', "123456789012.345678901"),
        ("1e3", "1E+3"),
        ("0", "0"),
        ('"19.990"', "19.990"),
    ],
)
def test_money_is_parsed_as_exact_decimal(decoder: Decoder, amount_json: str, expected: str) -> None:
    raw = (
        '{"event_id":"e","type":"opportunity.won","occurred_at":"%s",'
        '"data":{"opportunity_id":"o","rep_id":"r","currency":"EUR","amount":%s}}'
    ) % (T0, amount_json)
    event = decoder.decode(raw.encode())
    assert isinstance(event.amount_original, Decimal)
    assert str(event.amount_original) == expected  # same digits: never went through float
    assert event.amount == Decimal(expected)


@pytest.mark.parametrize(
    ("price_a", "price_b", "total"),
    [
        ("0.1", "0.2", "0.3"),  # as floats these would add up to 0.30000000000000004
        ('"0.1"', '"0.2"', '"0.3"'),
        ("0.1", '"0.2"', "0.30"),
        ('"1.005"', "2.005", '"3.010"'),
    ],
)
def test_invoice_total_is_checked_exactly(
    decoder: Decoder, price_a: str, price_b: str, total: str
) -> None:
    raw = (
        '{"event_id":"e","type":"invoice.issued","occurred_at":"%s","data":{"invoice_id":"i",'
        '"customer_id":"c","currency":"EUR","total":%s,"lines":['
        '{"sku":"a","quantity":1,"unit_price":%s},{"sku":"b","quantity":1,"unit_price":%s}]}}'
    ) % (T0, total, price_a, price_b)
    event = decoder.decode(raw.encode())
    assert event.total_original == Decimal(json.loads(total) if total.startswith('"') else total)


def test_custom_rates_are_used(decoder: Decoder) -> None:
    custom = Decoder(stages=DEFAULT_STAGES, rates=Rates("USD", {"EUR": "1.25"}))
    raw = _paid("payment.received", amount="8")
    assert custom.decode(raw).amount == Decimal("10")
    assert decoder.decode(raw).amount == Decimal("8")


# --- timestamps -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("occurred_at", "epoch"),
    [
        ("2026-11-28T09:15:00Z", T0_EPOCH),
        ("2026-11-28T10:15:00+01:00", T0_EPOCH),
        ("2026-11-28T04:15:00-05:00", T0_EPOCH),
        ("2026-11-28t09:15:00z", T0_EPOCH),
        ("2026-11-28 09:15:00Z", T0_EPOCH),
        ("2026-11-28T09:15:00-00:00", T0_EPOCH),
        ("2026-11-28T09:15:00.25Z", T0_EPOCH + 0.25),
        ("2026-11-28T09:15:00.123456789Z", T0_EPOCH + 0.123456),
        # The first and last seconds accepted (1900-01-01 is 25,567 days before 1970,
        # 9000-01-01 2,567,655 days after).
        ("1900-01-01T00:00:00Z", -25_567 * 86_400),
        ("1900-01-01T01:00:00+01:00", -25_567 * 86_400),
        ("8999-12-31T23:59:59Z", 2_567_655 * 86_400 - 1),
    ],
)
def test_occurred_at_becomes_epoch_seconds(decoder: Decoder, occurred_at: str, epoch: float) -> None:
    event = decoder.decode(record("email.sent", {"rep_id": "r"}, occurred_at=occurred_at))
    assert event.ts == pytest.approx(epoch, abs=1e-6)


# --- tolerated input --------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [
        record("email.sent", {"rep_id": "r", "extra": {"nested": [1, 2, {"a": ":"}]}}, crm_meta="x:y"),
        record("email.sent", {"rep_id": "r", "contact_id": None}, source=None),
        record("email.sent", {"rep_id": "r:1", "contact_id": "c:\u00e9:\u2603"}),
        # \u escapes (incl. an escaped ':') take the slow duplicate check and must pass it.
        b'{"event_id":"e","type":"email.sent","occurred_at":"2026-11-28T09:15:00Z",'
        b'"data":{"rep_id":"r\\u003a1","note":"\\u00e9"}}',
        # type after data: the tagged union does not need it first.
        b'{"data":{"rep_id":"r"},"occurred_at":"2026-11-28T09:15:00Z","event_id":"e","type":"email.sent"}',
        b" \n" + OK_HEAD + b'"data":{"rep_id":"r"}}\n',  # whitespace around the object
    ],
)
def test_unknown_fields_nulls_and_escapes_are_accepted(decoder: Decoder, raw: bytes) -> None:
    event = decoder.decode(raw)
    assert isinstance(event, ev.EmailSent)
    assert event.rep_id.startswith("r") and event.source is None


def test_escaped_values_are_unescaped(decoder: Decoder) -> None:
    event = decoder.decode(
        b'{"event_id":"e","type":"email.sent","occurred_at":"2026-11-28T09:15:00Z",'
        b'"data":{"rep_id":"r\\u003a1"}}'
    )
    assert event.rep_id == "r:1"


# --- bad input: one row per way to be wrong ------------------------------------------------

def _won(**data: Any) -> bytes:
    base = {"opportunity_id": "o", "rep_id": "r", "amount": "10", "currency": "EUR"}
    base.update(data)
    return record("opportunity.won", {k: v for k, v in base.items() if v is not ...})


def _invoice(lines: Any, **data: Any) -> bytes:
    base = {"invoice_id": "i", "customer_id": "c", "currency": "EUR", "lines": lines}
    base.update(data)
    return record("invoice.issued", {k: v for k, v in base.items() if v is not ...})


def _at(occurred_at: str) -> bytes:
    return record("email.sent", {"rep_id": "r"}, occurred_at=occurred_at)


def _opp(event_type: str, **data: Any) -> bytes:
    return record(event_type, {"opportunity_id": "o", "rep_id": "r", **data})


def _paid(event_type: str, **data: Any) -> bytes:
    base = {"invoice_id": "i", "customer_id": "c", "currency": "EUR"}
    if event_type == "spend.recorded":
        base = {"currency": "EUR", "category": "sales"}
    return record(event_type, {**base, **data})


def _line(**fields: Any) -> dict[str, Any]:
    return {"sku": "a", "quantity": 1, "unit_price": 1, **fields}


def _envelope_without(field: str) -> bytes:
    body = {"event_id": "e", "type": "email.sent", "occurred_at": T0, "data": {"rep_id": "r"}}
    del body[field]
    return json.dumps(body).encode()


BAD = [
    # not_json
    ("no value", None, "not_json"),
    ("empty", b"", "not_json"),
    ("garbage", b"hello", "not_json"),
    ("truncated", OK_HEAD + b'"data":{"rep_id":"r"', "not_json"),
    ("trailing data", OK_HEAD + b'"data":{"rep_id":"r"}} {}', "not_json"),
    ("byte order mark", b"\xef\xbb\xbf" + OK_HEAD + b'"data":{"rep_id":"r"}}', "not_json"),
    ("NaN literal", OK_HEAD + b'"data":{"rep_id":"r","x":NaN}}', "not_json"),
    ("Infinity literal", OK_HEAD + b'"data":{"rep_id":"r","x":Infinity}}', "not_json"),
    ("-Infinity literal", OK_HEAD + b'"data":{"rep_id":"r","x":-Infinity}}', "not_json"),
    ("invalid UTF-8 in a known field", OK_HEAD + b'"data":{"rep_id":"r\xff"}}', "not_json"),
    ("invalid UTF-8 in an ignored field", OK_HEAD + b'"data":{"rep_id":"r","x":"\xc3"}}', "not_json"),
    ("overlong UTF-8", OK_HEAD + b'"data":{"rep_id":"\xc0\xaf"}}', "not_json"),
    ("lone surrogate escape", OK_HEAD + b'"data":{"rep_id":"\\ud800"}}', "not_json"),
    ("duplicate envelope key", OK_HEAD + b'"event_id":"f","data":{"rep_id":"r"}}', "not_json"),
    ("duplicate type key", OK_HEAD + b'"type":"email.sent","data":{"rep_id":"r"}}', "not_json"),
    ("duplicate data key", OK_HEAD + b'"data":{"rep_id":"r","rep_id":"s"}}', "not_json"),
    ("duplicate ignored key", OK_HEAD + b'"data":{"rep_id":"r","x":1,"x":2}}', "not_json"),
    ("duplicate nested ignored key", OK_HEAD + b'"data":{"rep_id":"r","x":{"a":1,"a":1}}}', "not_json"),
    ("duplicate key hidden by \\u003a", OK_HEAD + b'"data":{"rep_id":"r","rep_id":"\\u003a"}}', "not_json"),
    ("duplicate key written with escapes",
     OK_HEAD + b'"data":{"rep_id":"r","rep\\u005fid":"s"}}', "not_json"),
    ("duplicate key with a schema error", OK_HEAD + b'"data":{"rep_id":1,"rep_id":1}}', "not_json"),
    ("duplicate line key", _invoice([{"sku": "a", "quantity": 1, "unit_price": 1}]).replace(
        b'"sku": "a"', b'"sku": "a", "sku": "b"'), "not_json"),
    ("malformed after a schema error", b'{"event_id":"e","type":"nope",', "not_json"),
    ("deeply nested",
     OK_HEAD + b'"data":{"rep_id":"r"},"x":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "not_json"),
    ("one level too deep", OK_HEAD + b'"data":{"rep_id":"r"},"x":'
     + b"[" * MAX_NESTING + b"]" * MAX_NESTING + b"}", "not_json"),
    ("unbalanced deep", b"[" * 5000, "not_json"),
    # not_object
    ("array", b"[]", "not_object"),
    ("string", b'"call.logged"', "not_object"),
    ("number", b"42", "not_object"),
    ("null", b"null", "not_object"),
    # unknown_type
    ("unknown type", record("call.made", {"rep_id": "r"}), "unknown_type"),
    ("won is not a type", record("opportunity.closed", {"rep_id": "r"}), "unknown_type"),
    # missing_field
    ("no event_id", _envelope_without("event_id"), "missing_field"),
    ("no type", _envelope_without("type"), "missing_field"),
    ("no occurred_at", _envelope_without("occurred_at"), "missing_field"),
    ("no data", _envelope_without("data"), "missing_field"),
    ("no rep_id", record("call.logged", {"contact_id": "c"}), "missing_field"),
    ("null rep_id", record("call.logged", {"rep_id": None}), "missing_field"),
    ("null data", record("email.sent", None), "missing_field"),
    ("prospect without contact", record("prospect.contacted", {"rep_id": "r"}), "missing_field"),
    ("won without amount", _won(amount=...), "missing_field"),
    ("won without currency", _won(currency=...), "missing_field"),
    ("created amount without currency", record("opportunity.created", {
        "opportunity_id": "o", "rep_id": "r", "stage": "qualified", "amount": "5"}), "missing_field"),
    ("created currency without amount", record("opportunity.created", {
        "opportunity_id": "o", "rep_id": "r", "stage": "qualified", "currency": "EUR"}), "missing_field"),
    ("invoice without lines", _invoice(...), "missing_field"),
    ("line without price", _invoice([{"sku": "a", "quantity": 1}]), "missing_field"),
    ("rep without team", record("rep.upserted", {"rep_id": "r", "region_id": "x"}), "missing_field"),
    ("rep without region", record("rep.upserted", {"rep_id": "r", "team_id": "t"}), "missing_field"),
    ("spend without category", record("spend.recorded", {"amount": 1, "currency": "EUR"}), "missing_field"),
    # bad_type
    ("type not a string", record(7, {"rep_id": "r"}), "bad_type"),  # type: ignore[arg-type]
    ("event_id a number", record("email.sent", {"rep_id": "r"}, event_id=5), "bad_type"),
    ("occurred_at a number", record("email.sent", {"rep_id": "r"}, occurred_at=1795857300), "bad_type"),
    ("data an array", record("email.sent", [{"rep_id": "r"}]), "bad_type"),
    ("rep_id a number", record("email.sent", {"rep_id": 17}), "bad_type"),
    ("duration a string", record("call.logged", {"rep_id": "r", "duration_s": "240"}), "bad_type"),
    ("amount a boolean", _won(amount=True), "bad_type"),
    ("amount an object", _won(amount={"value": 1}), "bad_type"),
    ("lines an object", _invoice({"sku": "a"}), "bad_type"),
    ("line null", _invoice([None]), "bad_type"),
    ("schema_version a string", record("email.sent", {"rep_id": "r"}, schema_version="1"), "bad_type"),
    # bad_value
    ("empty event_id", record("email.sent", {"rep_id": "r"}, event_id=""), "bad_value"),
    ("event_id too long", record("email.sent", {"rep_id": "r"}, event_id="e" * 129), "bad_value"),
    ("empty rep_id", record("email.sent", {"rep_id": ""}), "bad_value"),
    # A scope id's '|' would read as the next part of a KPI key.
    ("rep_id with a bar", record("email.sent", {"rep_id": "r|day"}), "bad_value"),
    ("rep_id with an escaped bar", OK_HEAD + b'"data":{"rep_id":"r\\u007cday"}}', "bad_value"),
    ("team_id with a bar", record("rep.upserted", {"rep_id": "r", "team_id": "t|1", "region_id": "x"}), "bad_value"),
    ("region_id with a bar", record("rep.upserted", {"rep_id": "r", "team_id": "t", "region_id": "x|"}), "bad_value"),
    ("spend's team_id with a bar", _paid("spend.recorded", amount=1, category="marketing", team_id="|t"), "bad_value"),
    ("naive timestamp", _at("2026-11-28T09:15:00"), "bad_value"),
    ("date only", _at("2026-11-28"), "bad_value"),
    ("offset without colon", _at("2026-11-28T09:15:00+0100"), "bad_value"),
    ("no seconds", _at("2026-11-28T09:15Z"), "bad_value"),
    ("basic ISO format", _at("20261128T091500Z"), "bad_value"),
    ("impossible date", _at("2026-02-30T09:15:00Z"), "bad_value"),
    ("hour 24", _at("2026-11-28T24:00:00Z"), "bad_value"),
    ("offset of a day", _at("2026-11-28T09:15:00+24:00"), "bad_value"),
    ("year zero", _at("0000-01-01T00:00:00Z"), "bad_value"),
    # A placeholder date passes the shape check, but its previous year is year 0.
    ("year one (a zero-time placeholder)", _at("0001-01-01T00:00:00Z"), "bad_value"),
    ("a second before 1900", _at("1899-12-31T23:59:59Z"), "bad_value"),
    ("1900 reached through an offset", _at("1900-01-01T00:30:00+01:00"), "bad_value"),
    ("year 9000", _at("9000-01-01T00:00:00Z"), "bad_value"),
    ("year 9999 late in the day behind UTC", _at("9999-12-31T23:59:59-23:59"), "bad_value"),
    ("due_at in year one", _invoice([LINE], due_at="0001-01-01T00:00:00Z"), "bad_value"),
    ("naive due_at", _invoice([LINE], due_at="2026-12-28"), "bad_value"),
    ("schema_version 2", record("email.sent", {"rep_id": "r"}, schema_version=2), "bad_value"),
    ("negative duration", record("call.logged", {"rep_id": "r", "duration_s": -1}), "bad_value"),
    ("duration over a day", record("call.logged", {"rep_id": "r", "duration_s": 86401}), "bad_value"),
    ("duration overflows float", OK_HEAD.replace(b"email.sent", b"call.logged")
     + b'"data":{"rep_id":"r","duration_s":1e999}}', "bad_value"),
    ("negative amount", _won(amount="-1"), "bad_value"),
    ("amount above the cap", _won(amount="1000000000000.01"), "bad_value"),
    ("huge amount number", _won(amount=10**400), "bad_value"),
    ("amount NaN string", _won(amount="NaN"), "bad_value"),
    ("amount sNaN string", _won(amount="sNaN"), "bad_value"),
    ("amount Infinity string", _won(amount="Infinity"), "bad_value"),
    ("amount not a number", _won(amount="ten"), "bad_value"),
    ("amount with decimal comma", _won(amount="1,5"), "bad_value"),
    ("zero payment", _paid("payment.received", amount=0), "bad_value"),
    ("negative credit note", _paid("credit_note.issued", amount="-5"), "bad_value"),
    ("zero spend", _paid("spend.recorded", amount="0.00"), "bad_value"),
    ("unknown spend category", _paid("spend.recorded", amount=1, category="travel"), "bad_value"),
    ("lower-case currency", _won(currency="eur"), "bad_value"),
    ("currency too long", _won(currency="EURO"), "bad_value"),
    ("no lines", _invoice([]), "bad_value"),
    ("zero quantity", _invoice([{"sku": "a", "quantity": 0, "unit_price": 1}]), "bad_value"),
    ("negative quantity", _invoice([{"sku": "a", "quantity": "-2", "unit_price": 1}]), "bad_value"),
    ("quantity above the cap", _invoice([{"sku": "a", "quantity": 10**9 + 1, "unit_price": 1}]), "bad_value"),
    ("negative unit price", _invoice([{"sku": "a", "quantity": 1, "unit_price": -1}]), "bad_value"),
    ("negative unit cost", _invoice([_line(unit_cost="-0.01")]), "bad_value"),
    ("negative total", _invoice([{"sku": "a", "quantity": 1, "unit_price": 0}], total="-0.01"), "bad_value"),
    ("computed total above the cap", _invoice([_line(quantity=2, unit_price=6 * 10**11)]), "bad_value"),
    ("absurd precision", _invoice([_line(quantity="1." + "0" * 150 + "1", unit_price=3)]), "bad_value"),
    # unknown_currency
    ("won in an unknown currency", _won(currency="XYZ"), "unknown_currency"),
    ("invoice in an unknown currency", _invoice([LINE], currency="JPY"), "unknown_currency"),
    ("spend in an unknown currency", _paid("spend.recorded", amount=1, currency="CHF"), "unknown_currency"),
    # unknown_stage
    ("created at an unknown stage", _opp("opportunity.created", stage="closing"), "unknown_stage"),
    ("created as won", _opp("opportunity.created", stage="won"), "unknown_stage"),
    ("moved to lost", _opp("opportunity.stage_changed", to_stage="lost"), "unknown_stage"),
    ("moved to an unknown stage", _opp("opportunity.stage_changed", to_stage="Demo"), "unknown_stage"),
    ("moved from an unknown stage", _opp("opportunity.stage_changed", to_stage="demo", from_stage="intro"), "unknown_stage"),
    # inconsistent_total
    ("total off by a cent", _invoice([LINE], total="21.01"), "inconsistent_total"),
    ("total of the first line only", _invoice([LINE, _line()], total=21), "inconsistent_total"),
    ("total ignoring quantity", _invoice([_line(quantity=3, unit_price="0.1")], total="0.1"), "inconsistent_total"),
]


@pytest.mark.parametrize(("case", "raw", "reason"), BAD, ids=[case[0] for case in BAD])
def test_bad_input_gets_its_reason(decoder: Decoder, case: str, raw: bytes | None, reason: str) -> None:
    error = rejected(decoder, raw)
    assert error.reason == reason, error.detail
    assert error.detail and len(error.detail) <= 200


def test_size_is_checked_before_parsing() -> None:
    small = Decoder(stages=DEFAULT_STAGES, rates=Rates(), max_event_bytes=300)
    fits = record("email.sent", {"rep_id": "r"})
    assert isinstance(small.decode(fits), ev.EmailSent)
    # Not even JSON, but too large is what is reported: nothing was parsed.
    assert rejected(small, b"{" * 301).reason == "too_large"
    assert rejected(small, fits + b" " * (301 - len(fits))).reason == "too_large"
    assert isinstance(small.decode(fits + b" " * (300 - len(fits))), ev.EmailSent)


def test_nesting_up_to_the_limit_is_accepted(decoder: Decoder) -> None:
    depth = MAX_NESTING - 1  # the envelope object is the first level
    raw = OK_HEAD + b'"data":{"rep_id":"r"},"x":' + b"[" * depth + b"]" * depth + b"}"
    assert isinstance(decoder.decode(raw), ev.EmailSent)


def test_many_invoice_lines_are_not_mistaken_for_deep_nesting(decoder: Decoder) -> None:
    lines = [{"sku": f"s{i}", "quantity": 1, "unit_price": "1.5"} for i in range(200)]
    event = decoder.decode(_invoice(lines))
    assert len(event.lines) == 200 and event.total_original == Decimal("300")


# --- details name the field and never echo the payload -------------------------------------

@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (record("call.logged", {"contact_id": "c"}), "data.rep_id"),
        (_invoice([{"sku": "a", "quantity": 1}]), "data.lines[0].unit_price"),
        (_invoice([LINE, {"sku": "a", "quantity": 0, "unit_price": 1}]), "data.lines[1].quantity"),
        (_won(amount="-1"), "data.amount"),
        (_at("2026-11-28"), "occurred_at"),
        (_won(currency="XYZ"), "data.currency"),
        (_opp("opportunity.stage_changed", to_stage="x"), "data.to_stage"),
        (record("email.sent", {"rep_id": 17}), "data.rep_id"),
        (_envelope_without("data"), "data"),
    ],
)
def test_detail_names_the_field(decoder: Decoder, raw: bytes, field: str) -> None:
    assert field in rejected(decoder, raw).detail


SECRET = "S3CRET"


@pytest.mark.parametrize(
    "raw",
    [
        record(f"{SECRET}.type", {"rep_id": "r"}),
        record("email.sent", {"rep_id": "r"}, occurred_at=f"{SECRET}-11-28T09:15:00Z"),
        record("email.sent", {"rep_id": "r"}, event_id=SECRET * 30),
        record("email.sent", {"rep_id": "r"}, schema_version=int("9" * 6)),
        record("spend.recorded", {"amount": 1, "currency": "EUR", "category": SECRET}),
        record("opportunity.created", {"opportunity_id": "o", "rep_id": SECRET, "stage": SECRET}),
        record("call.logged", {"rep_id": SECRET, "duration_s": SECRET}),
        _won(amount=SECRET, rep_id=SECRET),
        _won(amount=f"-{999999}"),
        _won(currency="SEC"),
        _invoice([LINE], total="99999.5", invoice_id=SECRET),
        OK_HEAD + b'"data":{"rep_id":"' + SECRET.encode() + b'","rep_id":"r"}}',
    ],
)
def test_detail_never_echoes_payload_values(decoder: Decoder, raw: bytes) -> None:
    detail = rejected(decoder, raw).detail
    for value in (SECRET, "999999", "99999.5", "SEC"):
        assert value not in detail


def test_won_and_lost_cannot_be_configured_as_stages() -> None:
    with pytest.raises(ValueError):
        Decoder(stages=("prospecting", "won"), rates=Rates())
    with pytest.raises(ValueError):
        Decoder(stages=(), rates=Rates())


def test_configured_stages_are_the_ones_accepted() -> None:
    custom = Decoder(stages=("lead", "trial"), rates=Rates())
    ok = record("opportunity.created", {"opportunity_id": "o", "rep_id": "r", "stage": "trial"})
    assert custom.decode(ok).stage == "trial"
    default_stage = record("opportunity.created", {"opportunity_id": "o", "rep_id": "r", "stage": "demo"})
    assert rejected(custom, default_stage).reason == "unknown_stage"


def test_events_round_trip_through_msgspec() -> None:
    # Agents may store events; the tagged union must read back the same class.
    import msgspec

    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates())
    for event_type, data, cls, _ in HAPPY:
        event = decoder.decode(record(event_type, data))
        again = msgspec.json.decode(msgspec.json.encode(event), type=ev.Event)
        assert again == event and type(again) is cls
