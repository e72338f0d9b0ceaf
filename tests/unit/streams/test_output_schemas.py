"""The output schemas: published files, and records as the pipeline builds them matching them field for field."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from kpi_state.alert_records import build_record
from kpi_state.records import KpiValue, encoded
from streams import schemas
from streams.output_schemas import AlertRecord, output_schemas
from tests.unit.streams.test_schemas import assert_published

OUTPUT_DIR = Path(__file__).resolve().parents[3] / "schemas" / schemas.OUTPUTS_DIR
GENERATED = output_schemas(schemas.JSON_SCHEMA_DIALECT)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_published_file_equals_the_generated_schema(name: str) -> None:
    assert_published(OUTPUT_DIR / schemas.schema_file_name(name), GENERATED[name])


RELATED = [{"kpi": "calls", "window": "week", "value": 12.0, "status": "red"},
           {"kpi": "stage_conversion", "window": "month", "value": None, "status": "unknown"}]


@pytest.mark.parametrize(("status", "ends_at", "related"), [
    ("firing", None, RELATED),
    ("resolved", 1_764_600_000.0, []),
])
def test_an_alert_record_is_what_its_schema_describes(status, ends_at, related) -> None:
    record = build_record(
        status=status, kpi="win_rate", scope="team:t1", window="month", severity="warning",
        direction="higher", starts_at=1_764_500_000.0, ends_at=ends_at, value=0.12, threshold=0.2,
        summary="Win rate", runbook="  Look at the stages.\n", related=related,
    )
    wire = json.loads(json.dumps(record))
    # Into the schema's struct and back: a field it lacks, or one it names that the
    # record does not carry, or a value of another type, makes the two differ.
    assert msgspec.to_builtins(msgspec.convert(wire, AlertRecord)) == wire
    schema = GENERATED["kpi.alerts"]["$defs"]["AlertRecord"]
    assert set(schema["required"]) == set(wire)


def test_a_kpi_record_is_what_its_schema_describes() -> None:
    record = KpiValue("pipeline_value", "rep:r-1", "month", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z",
                      1200.5, 1200.5, None, "EUR", "green", {"stage": "proposal"}, "2026-11-30T10:00:00Z")
    wire = json.loads(encoded(record))
    schema = GENERATED["kpi.values"]["$defs"]["KpiValue"]
    assert set(schema["properties"]) == set(wire) == set(schema["required"])
    assert wire["dims"] == {"stage": "proposal"} and wire["denominator"] is None
