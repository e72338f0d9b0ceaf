"""Re-sent history months old (a re-import through the backfill topic) is a duplicate, also after recovery."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kpi_state import events as ev
from kpi_state import id_digests
from kpi_state.entity import EntityRecord
from kpi_state.partition_engine import APPLIED, PartitionEngine
from kpi_state.routing import entity_key, fingerprint
from tests.unit.kpi_state.test_event_time_order import DAY, T0, engine, invoice, payment

LIVE, BACKFILL = "crm.events|0", None  # the backfill topic does not move the watermark


def call(eid: str, ts: float) -> ev.Event:
    return ev.CallLogged(event_id=eid, ts=ts, rep_id="r-1", duration_s=60.0)


def spend(eid: str, ts: float, amount: str = "10") -> ev.Event:
    return ev.SpendRecorded(event_id=eid, ts=ts, amount=Decimal(amount), amount_original=Decimal(amount),
                            currency="EUR", category="marketing", team_id="t-1")


class Feed:
    """One engine with its offsets; `totals` sums every cell value of the rep's scope (and spend)."""

    def __init__(self, e: PartitionEngine | None = None, offset: int = 0) -> None:
        self.e = e if e is not None else engine()
        self.offset = offset
        self.topic: dict[bytes, bytes] = {}  # the compacted state topic

    def persist(self) -> None:
        self.topic.update(self.e.take_dirty())

    def send(self, event: ev.Event, source: str | None = LIVE) -> str:
        self.offset += 1
        outcome = self.e.apply(entity_key(event), event, self.offset, fingerprint(event), b"r", source)
        self.e.advance(self.e.now or 0.0)
        return outcome

    def totals(self) -> dict[str, Decimal]:
        self.e.cells.mark_all_dirty()
        out: dict[str, Decimal] = {}
        for (scope, _day), update in self.e.take_cells().items():
            if scope in ("rep:r-1", "team:t-1"):
                for name, value in update.values.items():
                    out[f"{scope}/{name}"] = out.get(f"{scope}/{name}", Decimal(0)) + value
        return out

    def recovered(self) -> Feed:
        again = engine()
        self.persist()
        for key, raw in self.topic.items():
            again.load(key, raw)
        again.rebuild()
        return Feed(again, self.offset)


def history(feed: Feed) -> list[ev.Event]:
    """A call, an invoice with a payment, and spend, then live traffic 60 days on."""
    first = [call("call-1", T0), invoice("inv-1", T0, "100"), payment("pay-1", T0 + DAY, "40"),
             spend("spend-1", T0)]
    for event in first:
        assert feed.send(event) == APPLIED
    for day in (20, 40, 60):  # the watermark moves on: every id above leaves the dedup window
        assert feed.send(call(f"later-{day}", T0 + day * DAY)) == APPLIED
    return first


@pytest.mark.parametrize("recover", [False, True], ids=["running", "recovered"])
def test_history_re_sent_60_days_later_through_the_backfill_is_a_duplicate(recover: bool) -> None:
    feed = Feed()
    first = history(feed)
    for key, event in zip((b"rep:r-1", b"cust:c-1", b"cust:c-1", b"spend:t-1"), first):
        assert event.event_id not in feed.e.records[key].seen  # past the horizon: only its digest
    if recover:
        feed = feed.recovered()
    before = feed.totals()
    assert before["rep:r-1/calls"] == 4 and before["team:t-1/spend"] == 10 and before["rep:r-1/invoiced"] == 100
    assert [feed.send(event, BACKFILL) for event in first] == ["duplicate"] * 4
    assert feed.totals() == before
    assert feed.e.take_dead() == []


def test_an_id_never_seen_is_new_past_the_horizon_too() -> None:
    feed = Feed()
    history(feed)
    assert feed.send(call("call-2", T0), BACKFILL) == APPLIED  # an old call never sent before counts
    assert feed.send(payment("pay-2", T0 + 2 * DAY, "60"), BACKFILL) == APPLIED
    assert feed.totals()["rep:r-1/calls"] == 5


def test_other_content_under_a_forgotten_id_is_a_plain_duplicate() -> None:
    # Content fingerprints leave with the dedup window: documented in the README.
    feed = Feed()
    history(feed)
    before = feed.totals()
    assert feed.send(payment("pay-1", T0 + DAY, "999"), BACKFILL) == "duplicate"
    assert feed.totals() == before


def test_digests_move_between_the_two_runs_and_stay_found() -> None:
    record = EntityRecord(kind="rep")
    ids = [f"e-{i}" for i in range(2000)]
    for offset, eid in enumerate(ids):
        record.mark("crm.events|0", offset, eid, 1, float(offset), horizon_s=10.0)
    # Ids within 10 s of the newest, and at most an eighth of the horizon more (pruned in passes).
    assert 11 <= len(record.seen) <= 13
    assert record.past and len(record.past) % id_digests.SIZE == 0  # folded at least once
    slots = record.past + record.recent
    assert len(slots) == (2000 - len(record.seen)) * id_digests.SIZE
    assert all(record.admit("crm.events|0", 5000, eid, 1) == "duplicate" for eid in ids)
    assert record.admit("crm.events|0", 5000, "e-2000", 1) == "new"
    runs = [record.past[i : i + 8] for i in range(0, len(record.past), 8)]
    assert runs == sorted(runs)


def test_a_settled_opportunity_is_kept_encoded_and_judges_like_a_live_one() -> None:
    from tests.unit.kpi_state.test_event_time_order import created, lost, won

    feed = Feed()
    first = [created("c", T0), won("w", T0 + DAY, "500")]
    for event in first:
        assert feed.send(event) == APPLIED
    assert feed.send(call("later", T0 + 60 * DAY)) == APPLIED
    feed.persist()
    assert b"opp:o-1" in feed.e.cold and b"opp:o-1" not in feed.e.states
    totals = feed.totals()
    assert totals["rep:r-1/won"] == 1 and totals["rep:r-1/bookings"] == 500
    recovered = feed.recovered()
    assert b"opp:o-1" in recovered.e.cold  # recovery keeps it encoded too
    assert recovered.totals() == totals  # and its cells are rebuilt from the encoded record
    for running in (feed, recovered):
        assert [running.send(event, BACKFILL) for event in first] == ["duplicate", "duplicate"]
        assert running.send(lost("l", T0 + 2 * DAY), BACKFILL) == "invalid_transition"  # after the win
        assert running.totals() == totals
