"""Through the entity step: history re-sent 60 days later on the backfill topic is a duplicate, also after recovery."""

from __future__ import annotations

import json

import pytest

from agents.entities import EntityStep
from kpi_state.codec import FORWARDED, Forwarded
from kpi_state.routing import entity_key
from kpi_state.directory import RepDirectory
from streams.settings import DEFAULT_STAGES
from tests.inprocess import BILLING, CRM, Record, Settings, decoder
from tests.unit.agents.test_steps import DAY, metrics

BACKFILL = "events.backfill"


def envelope(event_id: str, event_type: str, when: str, **data: object) -> bytes:
    return json.dumps({"event_id": event_id, "type": event_type, "occurred_at": when,
                       "source": "test", "schema_version": 1, "data": data}).encode()


HISTORY = [
    (CRM, envelope("call-1", "call.logged", "2026-03-02T09:00:00Z", rep_id="a", duration_s=60)),
    (CRM, envelope("mail-1", "email.sent", "2026-03-02T09:05:00Z", rep_id="a")),
    (BILLING, envelope("inv-1", "invoice.issued", "2026-03-02T10:00:00Z", invoice_id="i-1",
                       customer_id="c-1", currency="EUR", rep_id="a", due_at="2026-04-01T00:00:00Z",
                       lines=[{"sku": "s", "quantity": 1, "unit_price": "100.00"}])),
    (BILLING, envelope("pay-1", "payment.received", "2026-03-03T10:00:00Z", invoice_id="i-1",
                       customer_id="c-1", amount="40.00", currency="EUR")),
    (BILLING, envelope("cn-1", "credit_note.issued", "2026-03-03T11:00:00Z", invoice_id="i-1",
                       customer_id="c-1", amount="10.00", currency="EUR")),
    (BILLING, envelope("spend-1", "spend.recorded", "2026-03-02T09:00:00Z", amount="25.00",
                       currency="EUR", category="marketing", team_id="t1")),
]
LATER = [(CRM, envelope(f"call-{day}", "call.logged", f"2026-{month}T09:00:00Z", rep_id="a"))
         for day, month in ((20, "03-22"), (40, "04-11"), (60, "05-01"))]


class Feed:
    """Forwarded records into one entity partition, with their offsets."""

    def __init__(self, step: EntityStep | None = None, offset: int = 0) -> None:
        self.step = step if step is not None else new_entity_step()
        self.offset = offset
        self.source_offsets: dict[str, int] = {}

    def send(self, records: list[tuple[str, bytes]], topic: str | None = None) -> list[str]:
        batch = []
        for original_topic, value in records:
            source = topic or original_topic
            at = self.source_offsets.get(source, 0)
            self.source_offsets[source] = at + 1
            packed = FORWARDED.encode(Forwarded(None, value, [], source, 0, at, 1_000))
            key = entity_key(decoder(Settings()).decode(value))  # as the edge keys it
            batch.append(Record("entity-events", 0, self.offset, key, packed))
            self.offset += 1
        return [r.reason for r in self.step.process(batch)]

    def cells(self) -> dict[bytes, bytes]:
        return dict(self.step.cell_messages())


def new_entity_step() -> EntityStep:
    directory = RepDirectory()
    directory.place("a", "t1", "north")
    return EntityStep(decoder=decoder(Settings()), directory=directory, metrics=metrics(), tz="UTC",
                       stages=DEFAULT_STAGES, dedup_horizon_s=8 * DAY, backfill_topic=BACKFILL)


def duplicates(step: EntityStep) -> float:
    return step.metrics.duplicates._value.get()


@pytest.mark.parametrize("recover", [False, True], ids=["running", "recovered"])
def test_history_re_sent_through_the_backfill_60_days_later_changes_no_kpi(recover: bool) -> None:
    feed = Feed()
    assert feed.send(HISTORY) == [] and feed.send(LATER) == []
    assert set(feed.cells()) >= {b"rep:a", b"team:t1", b"global"}
    if recover:
        stored = [(key, raw) for _, key, raw in feed.step.dirty_records()]
        again = new_entity_step()
        again.recover(stored, {0})
        again.cell_messages()  # the recovered cells, re-sent in full
        feed = Feed(again, feed.offset)
    counted = duplicates(feed.step)
    assert feed.send(HISTORY, topic=BACKFILL) == []  # no DLQ: neither late nor conflicting
    assert duplicates(feed.step) - counted == len(HISTORY)
    assert feed.cells() == {}  # no cell changed


def test_history_never_seen_counts_through_the_backfill() -> None:
    feed = Feed()
    feed.send(HISTORY[:1])
    feed.send(LATER)
    assert feed.send([(CRM, envelope("call-0", "call.logged", "2026-03-01T09:00:00Z", rep_id="a"))],
                     topic=BACKFILL) == []
    assert duplicates(feed.step) == 0
    assert b"rep:a" in feed.cells()
