"""Which entity each event belongs to: the key the entity step stores its state under."""

from __future__ import annotations

from datetime import datetime, timezone

from kpi_state.errors import InvalidEvent
from kpi_state.routing import entity_key
from streams.currency import Rates
from streams.decode import Decoder
from streams.settings import DEFAULT_STAGES
from streams.simulator import Simulator


def expected_key(event_type: str, data: dict) -> bytes:
    """The contract's entities, spelled from the JSON: not from the decoded event."""
    if event_type.startswith("opportunity."):
        return b"opp:" + data["opportunity_id"].encode()
    if event_type.split(".")[0] in ("invoice", "payment", "credit_note"):
        return b"cust:" + data["customer_id"].encode()
    if event_type == "spend.recorded":
        return b"spend:" + (data.get("team_id") or "-").encode()
    return b"rep:" + data["rep_id"].encode()


def test_every_kind_of_event_is_keyed_by_its_entity() -> None:
    import json

    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates("EUR"), max_event_bytes=65536)
    sim = Simulator(5, start=datetime(2026, 3, 2, tzinfo=timezone.utc), bad_ratio=0.0, initial_deals=40, activity=0.05)
    kinds = set()
    for row in sim.next_records(20_000):
        try:
            event = decoder.decode(row.value)
        except InvalidEvent:
            continue
        document = json.loads(row.value)
        kinds.add(document["type"])
        assert entity_key(event) == expected_key(document["type"], document["data"]), document["type"]
    assert len(kinds) >= 13  # every CRM and billing type the simulator makes
