"""Through every step: an event dated with a placeholder (year 1) goes to the DLQ and the flush still runs."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from tests.inprocess import BILLING, CRM, Input, run_pipeline

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc).timestamp()
DIRECTORY = {"r-01": ("t1", "north")}


def envelope(event_id: str, event_type: str, when: str, **data: object) -> bytes:
    return json.dumps({"event_id": event_id, "type": event_type, "occurred_at": when,
                       "source": "test", "schema_version": 1, "data": data}).encode()


def test_a_zero_time_event_is_dead_lettered_and_the_rest_is_published() -> None:
    # The placeholder is the first record of its partition: no watermark or lateness
    # check stands between it and the calendar, whose previous year of year 1 is year 0.
    inputs = [
        Input(CRM, 0, envelope("call-zero", "call.logged", "0001-01-01T00:00:00Z", rep_id="r-01")),
        Input(CRM, 1, envelope("call-1", "call.logged", "2026-11-30T09:00:00Z", rep_id="r-01")),
        Input(BILLING, 0, envelope("inv-zero", "invoice.issued", "2026-11-30T10:00:00Z",
                                   invoice_id="i-1", customer_id="c-1", currency="EUR", rep_id="r-01",
                                   due_at="0001-01-01T00:00:00Z",
                                   lines=[{"sku": "s", "quantity": 1, "unit_price": "10.00"}])),
    ]
    outcome = run_pipeline(inputs, DIRECTORY, wall_now=NOW)
    assert outcome.dlq == [("call-zero", "bad_value"), ("inv-zero", "bad_value")]
    assert outcome.latest["calls|rep:r-01|all|"]["value"] == 1
    assert outcome.latest["calls|global|day|2026-11-30T00:00:00Z"]["value"] == 1
