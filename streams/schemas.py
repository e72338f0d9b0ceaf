"""Wire schemas of the input records (contract §2) and the JSON Schema files generated from them."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

# Limits the decoder enforces beyond the contract's own; documented in the schemas too.
MONEY_CAP = Decimal(10) ** 12  # per amount, in the event's own currency
QUANTITY_CAP = Decimal(10) ** 9
MAX_CALL_SECONDS = 86_400
MAX_INVOICE_LINES = 1000
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 256

# RFC 3339 date-time with a mandatory offset ("T"/"Z" may be lower case, RFC 3339 §5.6).
# The decoder applies this same pattern in Python: as a msgspec constraint it would run
# through `re` for every event, several times slower than the whole typed decode.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
CURRENCY_PATTERN = r"^[A-Z]{3}$"
_MONEY_STRING_PATTERN = r"^[0-9]{1,13}(\.[0-9]+)?$"

# The Decimal fields below are checked in Python (msgspec has no numeric bounds for
# Decimal); `extra_json_schema` carries the same bounds into the published schemas.
Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
Text = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT_CHARS)]
Stage = Annotated[
    str,
    Meta(min_length=1, max_length=64, description="One of the configured pipeline stages."),
]
Timestamp = Annotated[
    str,
    Meta(
        max_length=40,
        description="RFC 3339 date-time with an explicit offset (Z or ±HH:MM).",
        extra_json_schema={"format": "date-time", "pattern": RFC3339_PATTERN},
    ),
]
Currency = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=3,
        description="ISO 4217 code with a configured exchange rate.",
        extra_json_schema={"pattern": CURRENCY_PATTERN},
    ),
]


def _money(description: str, bound: dict[str, Any]) -> Any:
    return Annotated[
        Decimal,
        Meta(
            description=description,
            extra_json_schema={"pattern": _MONEY_STRING_PATTERN, **bound},
        ),
    ]


_CAP = {"maximum": int(MONEY_CAP)}
Money = _money(
    "Amount in major units: JSON number or decimal string, at most 10^12.",
    {"minimum": 0, **_CAP},
)
PositiveMoney = _money(
    "Amount in major units, > 0: JSON number or decimal string, at most 10^12.",
    {"exclusiveMinimum": 0, **_CAP},
)
Quantity = _money(
    "Quantity, > 0: JSON number or decimal string, at most 10^9.",
    {"exclusiveMinimum": 0, "maximum": int(QUANTITY_CAP)},
)


class _Wire(msgspec.Struct, frozen=True, kw_only=True, gc=False, forbid_unknown_fields=False):
    """Base of every wire struct.

    Optional fields default to UNSET, never None: re-encoding a decoded struct then
    writes back exactly the keys the producer sent, which the decoder's duplicate-key
    check relies on (see streams/decode.py).
    """


# --- data payloads ---------------------------------------------------------------


class CallLoggedData(_Wire):
    rep_id: Id
    contact_id: Id | None | UnsetType = UNSET
    duration_s: Annotated[float, Meta(ge=0, le=MAX_CALL_SECONDS)] | None | UnsetType = UNSET
    outcome: Text | None | UnsetType = UNSET


class EmailSentData(_Wire):
    rep_id: Id
    contact_id: Id | None | UnsetType = UNSET


class MeetingBookedData(_Wire):
    rep_id: Id
    opportunity_id: Id | None | UnsetType = UNSET
    contact_id: Id | None | UnsetType = UNSET


class DemoCompletedData(_Wire):
    rep_id: Id
    opportunity_id: Id | None | UnsetType = UNSET


class ProspectContactedData(_Wire):
    rep_id: Id
    contact_id: Id


class OpportunityCreatedData(_Wire):
    """`amount` (expected value) and `currency` come together or not at all."""

    opportunity_id: Id
    rep_id: Id
    stage: Stage
    account_id: Id | None | UnsetType = UNSET
    customer_id: Id | None | UnsetType = UNSET
    amount: Money | None | UnsetType = UNSET
    currency: Currency | None | UnsetType = UNSET
    product: Text | None | UnsetType = UNSET


class OpportunityStageChangedData(_Wire):
    """Both stages must be configured stages; won and lost have events of their own."""

    opportunity_id: Id
    rep_id: Id
    to_stage: Stage
    from_stage: Stage | None | UnsetType = UNSET


class OpportunityWonData(_Wire):
    opportunity_id: Id
    rep_id: Id
    amount: Money
    currency: Currency


class OpportunityLostData(_Wire):
    opportunity_id: Id
    rep_id: Id
    reason: Text | None | UnsetType = UNSET


class InvoiceLineData(_Wire):
    sku: Id
    quantity: Quantity
    unit_price: Money
    unit_cost: Money | None | UnsetType = UNSET


class InvoiceIssuedData(_Wire):
    """If `total` is given it must equal Σ quantity × unit_price exactly."""

    invoice_id: Id
    customer_id: Id
    currency: Currency
    lines: Annotated[list[InvoiceLineData], Meta(min_length=1, max_length=MAX_INVOICE_LINES)]
    rep_id: Id | None | UnsetType = UNSET
    due_at: Timestamp | None | UnsetType = UNSET
    total: Money | None | UnsetType = UNSET


class PaymentReceivedData(_Wire):
    invoice_id: Id
    customer_id: Id
    amount: PositiveMoney
    currency: Currency


class CreditNoteIssuedData(_Wire):
    invoice_id: Id
    customer_id: Id
    amount: PositiveMoney
    currency: Currency


class SpendRecordedData(_Wire):
    amount: PositiveMoney
    currency: Currency
    category: Literal["marketing", "sales"]
    channel: Text | None | UnsetType = UNSET
    team_id: Id | None | UnsetType = UNSET


class RepUpsertedData(_Wire):
    rep_id: Id
    team_id: Id
    region_id: Id
    name: Text | None | UnsetType = UNSET
    manager: Text | None | UnsetType = UNSET


# --- envelopes: one tagged struct per type, so one typed decode reads a whole record ----


class _Envelope(_Wire, kw_only=True, tag_field="type"):
    event_id: Id
    occurred_at: Timestamp
    source: Id | None | UnsetType = UNSET
    schema_version: Literal[1] | UnsetType = UNSET


class CallLoggedEnvelope(_Envelope, tag="call.logged"):
    """A call made by a rep."""

    data: CallLoggedData


class EmailSentEnvelope(_Envelope, tag="email.sent"):
    """An email sent by a rep."""

    data: EmailSentData


class MeetingBookedEnvelope(_Envelope, tag="meeting.booked"):
    """A meeting booked by a rep."""

    data: MeetingBookedData


class DemoCompletedEnvelope(_Envelope, tag="demo.completed"):
    """A product demo given by a rep."""

    data: DemoCompletedData


class ProspectContactedEnvelope(_Envelope, tag="prospect.contacted"):
    """A prospect contacted by a rep."""

    data: ProspectContactedData


class OpportunityCreatedEnvelope(_Envelope, tag="opportunity.created"):
    """A new opportunity, entering the pipeline at a configured stage."""

    data: OpportunityCreatedData


class OpportunityStageChangedEnvelope(_Envelope, tag="opportunity.stage_changed"):
    """An opportunity moved to another configured stage."""

    data: OpportunityStageChangedData


class OpportunityWonEnvelope(_Envelope, tag="opportunity.won"):
    """An opportunity closed as won."""

    data: OpportunityWonData


class OpportunityLostEnvelope(_Envelope, tag="opportunity.lost"):
    """An opportunity closed as lost."""

    data: OpportunityLostData


class InvoiceIssuedEnvelope(_Envelope, tag="invoice.issued"):
    """An invoice issued to a customer."""

    data: InvoiceIssuedData


class PaymentReceivedEnvelope(_Envelope, tag="payment.received"):
    """A payment received against an invoice."""

    data: PaymentReceivedData


class CreditNoteIssuedEnvelope(_Envelope, tag="credit_note.issued"):
    """A credit note issued against an invoice."""

    data: CreditNoteIssuedData


class SpendRecordedEnvelope(_Envelope, tag="spend.recorded"):
    """Marketing or sales spend."""

    data: SpendRecordedData


class RepUpsertedEnvelope(_Envelope, tag="rep.upserted"):
    """A rep's team and region (topic sales.reps, keyed by rep_id)."""

    data: RepUpsertedData


ENVELOPES: tuple[type[_Envelope], ...] = (
    CallLoggedEnvelope,
    EmailSentEnvelope,
    MeetingBookedEnvelope,
    DemoCompletedEnvelope,
    ProspectContactedEnvelope,
    OpportunityCreatedEnvelope,
    OpportunityStageChangedEnvelope,
    OpportunityWonEnvelope,
    OpportunityLostEnvelope,
    InvoiceIssuedEnvelope,
    PaymentReceivedEnvelope,
    CreditNoteIssuedEnvelope,
    SpendRecordedEnvelope,
    RepUpsertedEnvelope,
)


def event_type(envelope: type[_Envelope]) -> str:
    """The `type` value that selects this envelope."""
    return str(envelope.__struct_config__.tag)


# --- JSON Schema -----------------------------------------------------------------

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per input event type, keyed by type, generated from the structs above."""
    return {event_type(env): _schema_for(env) for env in ENVELOPES}


def _schema_for(envelope: type[_Envelope]) -> dict[str, Any]:
    generated = msgspec.json.schema(envelope)
    _widen_decimals(generated)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"{event_type(envelope)} event",
        **generated,
    }


def _widen_decimals(node: Any) -> None:
    # msgspec describes Decimal as a string only; the wire also takes a JSON number
    # (decoded straight to Decimal, never through float).
    if isinstance(node, dict):
        if node.get("format") == "decimal":
            node["type"] = ["number", "string"]
            del node["format"]
        for child in node.values():
            _widen_decimals(child)
    elif isinstance(node, list):
        for child in node:
            _widen_decimals(child)


def schema_file_name(event_type_name: str) -> str:
    return f"{event_type_name}.json"


def render(schema: dict[str, Any]) -> str:
    """The exact text of a published schema file (stable key order, trailing newline)."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


OUTPUTS_DIR = "outputs"  # beside the inputs' files: the records the pipeline writes


def write_schemas(out_dir: Path) -> list[Path]:
    from streams.output_schemas import output_schemas  # the kpi_state side, imported when asked

    written = []
    for folder, schemas in ((out_dir, json_schemas()), (out_dir / OUTPUTS_DIR, output_schemas(JSON_SCHEMA_DIALECT))):
        folder.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.items():
            path = folder / schema_file_name(name)
            path.write_text(render(schema), encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m streams.schemas OUTDIR", file=sys.stderr)
        return 2
    for path in write_schemas(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
