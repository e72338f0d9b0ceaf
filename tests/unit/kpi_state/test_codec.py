"""Every internal record format encodes to the bytes that running deployments already store."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from kpi_state import codec
from kpi_state.events import CallLogged
from kpi_state.activity import ActivityState
from kpi_state.alerts import AlertState
from kpi_state.customer import CustomerState, Invoice, Movement, Pending
from kpi_state.day_cells import CellUpdate
from kpi_state.entity import EntityRecord
from kpi_state.opportunity import OpportunityState, Visit
from kpi_state.opportunity_history import Fact, OpportunityHistory
from kpi_state.spend import SpendState

# Produced by the code before the codecs were gathered here (the per-module encoder pairs,
# streams/internal.py and agents/rollup_stage.py): a change here breaks stored state topics.
# `entity` and `history` changed with the digests of old ids (positional records, smaller
# per settled opportunity), `forwarded` when it began to carry the decoded event: state
# topics of earlier versions are not read back.
EXPECTED = {
    "activity": "81a6636f756e747381aa323032362d30332d303282a563616c6c7303a86d656574696e677301",
    "customer": "84ab637573746f6d65725f6964a3632d31a8696e766f6963657381a3692d318da96973737565645f7473cb3ff8000000000000a66475655f7473c0a67265705f6964a3722d31a5746f74616ca63132302e3530a5756e697473a133a6636f73746564c3af67726f73735f776974685f636f7374a3313030b06d617267696e5f776974685f636f7374a534302e3235a87061796d656e74739193cb4000000000000000a23230c40178a76372656469747390a7706169645f7473c0a86576656e745f6964a3652d31a3726177c4027b7da770656e64696e6781a3692d3282a87061796d656e74739193cb4008000000000000a3352e35c0a76372656469747390b066697273745f696e766f6963655f6964a3692d31",
    "opportunity": "8aae6f70706f7274756e6974795f6964a36f2d31aa637265617465645f7473cb4024000000000000aa637265617465645f6279a3722d31a6616d6f756e74a63939392e3939a67669736974739295a44c454144cb4024000000000000a3722d31cb4034000000000000a3722d3295a3574f4ecb4034000000000000a3722d32c0c0a76f7574636f6d65a3574f4ea9636c6f7365645f7473cb4034000000000000a9636c6f7365645f6279a3722d32aa776f6e5f616d6f756e74a431303030a8776f6e5f6e657874a158",
    "history": "92a36f2d329297cb3ff0000000000000c40473652d3902a3722d33a45155414ca431322e33c40372617797cb4000000000000000c40573652d313001a3722d33c0c0c0",
    "history_uuid": "92a36f2d339197cb4014000000000000c411758dfbffed42c456ec9360c3d40d99bbe500a3722d31a45155414cc0c0",
    "spend": "82a77465616d5f6964a3742d31a5736c6f74738205a4372e323509a130",
    "entity": "99a36f7070c40201022acb400c00000000000081a3652d3192d2f8a432ebcb4010000000000000c400c400ac63726d2e6576656e74737c32c0",
    "entity_digests": "99a3726570c40007cb402200000000000080c410000102030405060708090a0b0c0d0e0fc40808090a0b0c0d0e0fac63726d2e6576656e74737c3082ac63726d2e6576656e74737c330cb062696c6c696e672e6576656e74737c3104",
    "scope_alerts": "84a673746174657382ae77696e5f726174657c6d6f6e746885a57068617365a6666972696e67a573696e6365cb4014000000000000a6706572696f64aa323032362d30332d3031a576616c7565cb3fd0000000000000a673616d706c65cb4028000000000000a5787c616c6c80a3646179aa323032362d30332d3032a66f7574626f789284a26964a469642d31a36b6579b677696e5f726174657c7265703a722d317c6d6f6e7468a67265636f7264c4077b2261223a317da97075626c6973686564c284a26964a469642d32a36b6579a16ba67265636f7264c400a97075626c6973686564c3a6666972696e6781ae77696e5f726174657c6d6f6e7468c4077b2266223a317d",
    "scope_alerts_empty": "80",
    "engine_clock": "92cb402900000000000082a563726d3a30cb4026000000000000a56572703a33cb4029000000000000",
    "engine_clock_empty": "92c080",
    "forwarded": "98c4016bc4077b2276223a317d9192a168c40131aa63726d2e6576656e7473024dcd03e888a474797065ab63616c6c2e6c6f67676564a67265705f6964a3722d31aa636f6e746163745f6964c0aa6475726174696f6e5f73cb403e000000000000a76f7574636f6d65c0a86576656e745f6964a3652d31a27473cb4014000000000000a6736f75726365c0",
    "forwarded_nulls": "98c0c40090a36572700000c0c0",
    "bundle": "919292c4056f70703a31c402010292c4057265703a72c400",
    "cells": "9303cb4058e0000000000081aa323032362d30332d30329282a7726576656e7565a531302e3530a56465616c73a13281a47265707392a3722d31a3722d32",
    "stored_parts": "92cb4058e0000000000082039281a7726576656e7565a531302e353081a47265707391a3722d3100928080",
}

SAMPLES: dict[str, tuple[codec.Codec[Any], Any]] = {
    "activity": (codec.ACTIVITY, ActivityState({"2026-03-02": {"calls": 3, "meetings": 1}})),
    "customer": (codec.CUSTOMER, CustomerState(
        customer_id="c-1",
        invoices={"i-1": Invoice(
            issued_ts=1.5, due_ts=None, rep_id="r-1", total=D("120.50"), units=D("3"), costed=True,
            gross_with_cost=D("100"), margin_with_cost=D("40.25"), payments=[Movement(2.0, D("20"), b"x")],
            paid_ts=None, event_id="e-1", raw=b"{}",
        )},
        pending={"i-2": Pending(payments=[Movement(3.0, D("5.5"))])},
        first_invoice_id="i-1",
    )),
    "opportunity": (codec.OPPORTUNITY, OpportunityState(
        opportunity_id="o-1", created_ts=10.0, created_by="r-1", amount=D("999.99"),
        visits=[Visit("LEAD", 10.0, "r-1", 20.0, "r-2"), Visit("WON", 20.0, "r-2")],
        outcome="WON", closed_ts=20.0, closed_by="r-2", won_amount=D("1000"), won_next="X",
    )),
    "history": (codec.OPPORTUNITY_HISTORY, OpportunityHistory(
        opportunity_id="o-2",
        facts=[Fact(1.0, "e-9", 2, "r-3", "QUAL", D("12.3"), b"raw"), Fact(2.0, "e-10", 1, "r-3")],
    )),
    "history_uuid": (codec.OPPORTUNITY_HISTORY, OpportunityHistory(
        opportunity_id="o-3", facts=[Fact(5.0, "8dfbffed-42c4-56ec-9360-c3d40d99bbe5", 0, "r-1", "QUAL")],
    )),
    "spend": (codec.SPEND, SpendState(team_id="t-1", slots={5: D("7.25"), 9: D("0")})),
    "entity": (codec.ENTITY_RECORD, EntityRecord(
        kind="opp", body=b"\x01\x02", applied_offset=42, newest_ts=3.5, seen={"e-1": (-123456789, 4.0)},
        applied_origin="crm.events|2",
    )),
    "entity_digests": (codec.ENTITY_RECORD, EntityRecord(
        kind="rep", applied_offset=7, newest_ts=9.0, past=bytes(range(16)), recent=bytes(range(8, 16)),
        applied_origin="crm.events|0", other_origins={"crm.events|3": 12, "billing.events|1": 4},
    )),
    "scope_alerts": (codec.SCOPE_ALERTS, codec.ScopeAlerts(
        states={
            "win_rate|month": AlertState(phase="firing", since=5.0, period="2026-03-01", value=0.25, sample=12.0),
            "x|all": AlertState(),
        },
        day="2026-03-02",
        outbox=[codec.Outgoing("id-1", "win_rate|rep:r-1|month", b'{"a":1}'), codec.Outgoing("id-2", "k", b"", True)],
        firing={"win_rate|month": b'{"f":1}'},
    )),
    "scope_alerts_empty": (codec.SCOPE_ALERTS, codec.ScopeAlerts()),
    "engine_clock": (codec.ENGINE_CLOCK, codec.EngineClock(12.5, {"crm:0": 11.0, "erp:3": 12.5})),
    "engine_clock_empty": (codec.ENGINE_CLOCK, codec.EngineClock()),
    "forwarded": (codec.FORWARDED, codec.Forwarded(
        b"k", b'{"v":1}', [("h", b"1")], "crm.events", 2, 77, 1_000,
        CallLogged(event_id="e-1", ts=5.0, rep_id="r-1", duration_s=30.0),
    )),
    "bundle": (codec.BUNDLE, codec.Bundle([(b"opp:1", b"\x01\x02"), (b"rep:r", b"")])),
    "forwarded_nulls": (codec.FORWARDED, codec.Forwarded(None, b"", [], "erp", 0, 0, None)),
    "cells": (codec.CELLS, codec.Cells.of(
        3, 99.5, {"2026-03-02": CellUpdate({"revenue": D("10.50"), "deals": D("2")}, {"reps": ["r-1", "r-2"]})},
    )),
    "stored_parts": (codec.STORED_PARTS, codec.StoredParts(
        99.5, {3: ({"revenue": "10.50"}, {"reps": ["r-1"]}), 0: ({}, {})},
    )),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bytes_are_those_already_stored(name: str) -> None:
    chosen, sample = SAMPLES[name]
    assert chosen.encode(sample).hex() == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_bytes_decode_to_the_sample(name: str) -> None:
    chosen, sample = SAMPLES[name]
    assert chosen.decode(bytes.fromhex(EXPECTED[name])) == sample


def test_entity_records_of_before_the_input_offsets_still_decode() -> None:
    # An entity-events offset of before meets no input partition's: the first replayed
    # event after an upgrade is then told a duplicate by its id, never counted twice.
    record = codec.ENTITY_RECORD.decode(bytes.fromhex(
        "97a36f7070c40201022acb400c00000000000081a3652d3192d2f8a432ebcb4010000000000000c400c400"
    ))
    assert (record.applied_offset, record.applied_origin, record.other_origins) == (42, "", None)
    assert record.admit("crm.events|0", 42, "e-1", -123456789) == "duplicate"


@pytest.mark.parametrize("event_id", [
    "8dfbffed-42c4-56ec-9360-c3d40d99bbe5",  # canonical: packed into 16 bytes
    "8DFBFFED-42C4-56EC-9360-C3D40D99BBE5",  # other spellings of a UUID stay text, as sent
    "{8dfbffed-42c4-56ec-9360-c3d40d99bbe}", "8dfbffed42c456ec9360c3d40d99bbe5", "evt-000000001", "é" * 36, "",
])
def test_packed_event_ids_come_back_exactly(event_id: str) -> None:
    packed = codec.pack_id(event_id)
    assert codec.unpack_id(packed) == event_id
    assert len(packed) == (17 if event_id.islower() and len(event_id) == 36 and "-" in event_id else
                           1 + len(event_id.encode()))


def test_a_record_of_another_format_is_refused() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        codec.CELLS.decode(bytes.fromhex(EXPECTED["forwarded"]))


def test_content_fingerprints_are_those_already_stored() -> None:
    # Entity records keep each event's fingerprint for dedup: a changed digest would make
    # every replayed event after an upgrade look like a conflicting rewrite.
    from kpi_state.events import CallLogged
    from kpi_state.routing import fingerprint

    call = CallLogged(event_id="e-1", ts=1772409600.0, source="crm", rep_id="r-1", duration_s=30.5)
    assert fingerprint(call) == -7412093179726892188


def test_the_fingerprint_of_a_forwarded_events_bytes_is_that_of_the_event_decoded() -> None:
    # The entity step digests the event bytes an edge wrote instead of encoding the decoded
    # event again: both must give the same fingerprint for every kind of event, or a re-sent
    # copy forwarded by an older edge (without its event) would look like a rewrite.
    from datetime import datetime, timezone

    from kpi_state.errors import InvalidEvent
    from kpi_state.routing import fingerprint, fingerprint_of_encoded
    from streams.currency import Rates
    from streams.decode import Decoder
    from streams.settings import DEFAULT_STAGES
    from streams.simulator import Simulator

    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates("EUR"), max_event_bytes=65536)
    sim = Simulator(11, start=datetime(2026, 3, 2, tzinfo=timezone.utc), bad_ratio=0.0, initial_deals=40, activity=0.05)
    events = []
    for row in sim.next_records(20_000):
        try:
            events.append(decoder.decode(row.value))
        except InvalidEvent:
            continue
    kinds = {event.type for event in events}
    assert {"call.logged", "opportunity.won", "invoice.issued", "payment.received", "credit_note.issued",
            "spend.recorded"} <= kinds
    for event in events:
        packed = codec.FORWARDED.encode(codec.Forwarded(None, b"{}", [], "crm.events", 0, 1, None, event))
        head = codec.FORWARDED_HEAD.decode(packed)
        encoded = head.encoded_event()
        assert encoded is not None
        assert codec.EVENT.decode(encoded) == event
        assert fingerprint_of_encoded(encoded) == fingerprint(event), event.type


def test_a_forwarded_record_without_its_event_reads_as_such() -> None:
    packed = codec.FORWARDED.encode(codec.Forwarded(b"k", b"{}", [("h", b"v")], "crm.events", 2, 7, 1_000))
    head = codec.FORWARDED_HEAD.decode(packed)
    assert head.encoded_event() is None
    assert (head.key, head.value, head.headers, head.topic, head.partition, head.offset, head.timestamp_ms) == (
        b"k", b"{}", [("h", b"v")], "crm.events", 2, 7, 1_000)
