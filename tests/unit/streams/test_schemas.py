"""The wire schemas: published JSON Schema files, contract fields, and the decoder's invariants."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kpi_state.events import EVENT_TYPES
from streams import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"
GENERATED = schemas.json_schemas()


def _data_schema(event_type: str) -> dict[str, Any]:
    schema = GENERATED[event_type]
    envelope = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    ref = envelope["properties"]["data"]["$ref"]
    return schema["$defs"][ref.rsplit("/", 1)[1]]


def assert_published(path: Path, schema: dict[str, Any]) -> None:
    """The file in the repository is what the generator writes today."""
    assert path.is_file(), f"missing {path}: run `python -m streams.schemas schemas`"
    assert path.read_text(encoding="utf-8") == schemas.render(schema), (
        f"{path.name} is stale: run `python -m streams.schemas schemas`"
    )


@pytest.mark.parametrize("event_type", sorted(GENERATED))
def test_published_file_equals_the_generated_schema(event_type: str) -> None:
    assert_published(SCHEMA_DIR / schemas.schema_file_name(event_type), GENERATED[event_type])


def test_one_schema_per_domain_event_type() -> None:
    assert set(GENERATED) == set(EVENT_TYPES)


# Required `data` fields, copied from CONTRACT.md §2 (the starred ones).
CONTRACT_REQUIRED = {
    "call.logged": {"rep_id"},
    "email.sent": {"rep_id"},
    "meeting.booked": {"rep_id"},
    "demo.completed": {"rep_id"},
    "prospect.contacted": {"rep_id", "contact_id"},
    "opportunity.created": {"opportunity_id", "rep_id", "stage"},
    "opportunity.stage_changed": {"opportunity_id", "rep_id", "to_stage"},
    "opportunity.won": {"opportunity_id", "rep_id", "amount", "currency"},
    "opportunity.lost": {"opportunity_id", "rep_id"},
    "invoice.issued": {"invoice_id", "customer_id", "currency", "lines"},
    "payment.received": {"invoice_id", "customer_id", "amount", "currency"},
    "credit_note.issued": {"invoice_id", "customer_id", "amount", "currency"},
    "spend.recorded": {"amount", "currency", "category"},
    "rep.upserted": {"rep_id", "team_id", "region_id"},
}

CONTRACT_OPTIONAL = {
    "call.logged": {"contact_id", "duration_s", "outcome"},
    "email.sent": {"contact_id"},
    "meeting.booked": {"opportunity_id", "contact_id"},
    "demo.completed": {"opportunity_id"},
    "prospect.contacted": set(),
    "opportunity.created": {"account_id", "customer_id", "amount", "currency", "product"},
    "opportunity.stage_changed": {"from_stage"},
    "opportunity.won": set(),
    "opportunity.lost": {"reason"},
    "invoice.issued": {"rep_id", "due_at", "total"},
    "payment.received": set(),
    "credit_note.issued": set(),
    "spend.recorded": {"channel", "team_id"},
    "rep.upserted": {"name", "manager"},
}


@pytest.mark.parametrize("event_type", sorted(CONTRACT_REQUIRED))
def test_data_fields_match_the_contract(event_type: str) -> None:
    data = _data_schema(event_type)
    assert set(data.get("required", [])) == CONTRACT_REQUIRED[event_type]
    assert set(data["properties"]) == CONTRACT_REQUIRED[event_type] | CONTRACT_OPTIONAL[event_type]


@pytest.mark.parametrize("event_type", sorted(GENERATED))
def test_envelope_requires_id_type_time_and_data(event_type: str) -> None:
    schema = GENERATED[event_type]
    envelope = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(envelope["required"]) == {"event_id", "type", "occurred_at", "data"}
    assert envelope["properties"]["type"] == {"enum": [event_type]}
    assert envelope["properties"]["event_id"]["minLength"] == 1
    assert envelope["properties"]["event_id"]["maxLength"] == 128
    assert schema["$schema"] == schemas.JSON_SCHEMA_DIALECT


@pytest.mark.parametrize(
    ("event_type", "path", "bound"),
    [
        ("opportunity.won", ("amount",), {"minimum": 0}),
        ("payment.received", ("amount",), {"exclusiveMinimum": 0}),
        ("credit_note.issued", ("amount",), {"exclusiveMinimum": 0}),
        ("spend.recorded", ("amount",), {"exclusiveMinimum": 0}),
        ("invoice.issued", ("lines", "quantity"), {"exclusiveMinimum": 0}),
        ("invoice.issued", ("lines", "unit_price"), {"minimum": 0}),
    ],
)
def test_money_is_a_number_or_a_string_with_its_bounds(
    event_type: str, path: tuple[str, ...], bound: dict[str, int]
) -> None:
    node = _data_schema(event_type)
    if path[0] == "lines":
        ref = node["properties"]["lines"]["items"]["$ref"]
        node = GENERATED[event_type]["$defs"][ref.rsplit("/", 1)[1]]
        path = path[1:]
    money = node["properties"][path[0]]
    assert money["type"] == ["number", "string"]
    assert "format" not in money
    for key, value in bound.items():
        assert money[key] == value
    assert "maximum" in money


def test_published_timestamp_pattern_needs_an_offset() -> None:
    schema = GENERATED["call.logged"]  # any type: the envelope is shared
    envelope = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    pattern = re.compile(envelope["properties"]["occurred_at"]["pattern"])
    assert pattern.search("2026-11-28T09:15:00Z")
    assert pattern.search("2026-11-28T09:15:00.250+01:00")
    for bad in ("2026-11-28T09:15:00", "2026-11-28", "2026-11-28T09:15:00+0100"):
        assert pattern.search(bad) is None


def _wire_structs() -> set[type]:
    """Every struct reachable from the envelopes (data payloads, invoice lines)."""
    found: set[type] = set()
    stack: list[Any] = [msgspec.inspect.type_info(env) for env in schemas.ENVELOPES]
    while stack:
        node = stack.pop()
        if isinstance(node, msgspec.inspect.StructType) and node.cls not in found:
            found.add(node.cls)
            stack.extend(field.type for field in node.fields)
        elif isinstance(node, msgspec.inspect.UnionType):
            stack.extend(node.types)
        elif isinstance(node, msgspec.inspect.ListType):
            stack.append(node.item_type)
        elif isinstance(node, msgspec.inspect.Metadata):
            stack.append(node.type)
    return found


def test_optional_wire_fields_default_to_unset() -> None:
    # The decoder's fast duplicate-key check counts on re-encoding writing back only
    # the keys that were sent: a None (or any other) default would break that.
    structs = _wire_structs()
    assert {schemas.CallLoggedData, schemas.InvoiceLineData} <= structs
    for cls in structs:
        for field in msgspec.structs.fields(cls):
            if field.required:
                continue
            assert field.default is msgspec.UNSET, f"{cls.__name__}.{field.name}"


def test_generator_writes_every_file(tmp_path: Path) -> None:
    assert schemas.main([str(tmp_path)]) == 0
    written = {path.name: json.loads(path.read_text()) for path in tmp_path.iterdir() if path.is_file()}
    assert written == {schemas.schema_file_name(t): s for t, s in GENERATED.items()}
    outputs = sorted(path.name for path in (tmp_path / schemas.OUTPUTS_DIR).iterdir())
    assert outputs == ["kpi.alerts.json", "kpi.values.json"]


def test_generator_needs_exactly_one_argument() -> None:
    assert schemas.main([]) == 2
