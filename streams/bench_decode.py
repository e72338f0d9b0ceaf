"""Decode throughput on one core for a realistic event mix: `python -m streams.bench_decode [N]`."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from streams.currency import Rates
from streams.decode import Decoder
from streams.settings import DEFAULT_STAGES

# (weight, type); mostly activities, as in a real CRM feed.
MIX: tuple[tuple[float, str], ...] = (
    (40, "call.logged"),
    (28, "email.sent"),
    (5, "meeting.booked"),
    (3, "demo.completed"),
    (5, "prospect.contacted"),
    (4, "opportunity.created"),
    (5, "opportunity.stage_changed"),
    (1.5, "opportunity.won"),
    (1.5, "opportunity.lost"),
    (4, "invoice.issued"),
    (2, "payment.received"),
    (0.5, "credit_note.issued"),
    (0.5, "spend.recorded"),
)


def _money(rng: random.Random) -> str | float:
    # Producers send both forms; the number form goes straight to Decimal too.
    value = round(rng.uniform(10, 5000), 2)
    return f"{value:.2f}" if rng.random() < 0.5 else value


def _data(kind: str, rng: random.Random) -> dict[str, Any]:
    rep = f"r-{rng.randrange(200)}"
    opp = f"o-{rng.randrange(100_000)}"
    contact = f"c-{rng.randrange(1_000_000)}"
    currency = rng.choice(("EUR", "EUR", "USD", "GBP"))
    if kind == "call.logged":
        return {"rep_id": rep, "contact_id": contact, "duration_s": rng.randrange(900),
                "outcome": "connected"}
    if kind in ("email.sent", "prospect.contacted"):
        return {"rep_id": rep, "contact_id": contact}
    if kind == "meeting.booked":
        return {"rep_id": rep, "opportunity_id": opp, "contact_id": contact}
    if kind == "demo.completed":
        return {"rep_id": rep, "opportunity_id": opp}
    if kind == "opportunity.created":
        return {"opportunity_id": opp, "rep_id": rep, "stage": "prospecting", "account_id": "a-1",
                "amount": _money(rng), "currency": currency, "product": "pro"}
    if kind == "opportunity.stage_changed":
        i = rng.randrange(1, len(DEFAULT_STAGES))
        return {"opportunity_id": opp, "rep_id": rep, "from_stage": DEFAULT_STAGES[i - 1],
                "to_stage": DEFAULT_STAGES[i]}
    if kind == "opportunity.won":
        return {"opportunity_id": opp, "rep_id": rep, "amount": _money(rng), "currency": currency}
    if kind == "opportunity.lost":
        return {"opportunity_id": opp, "rep_id": rep, "reason": "price"}
    invoice = {"invoice_id": f"i-{rng.randrange(10**6)}",
               "customer_id": f"cu-{rng.randrange(5000)}"}
    if kind == "invoice.issued":
        lines = [{"sku": f"sku-{rng.randrange(50)}", "quantity": rng.randrange(1, 10),
                  "unit_price": _money(rng), "unit_cost": "5.00"} for _ in range(rng.randint(1, 5))]
        return {**invoice, "currency": currency, "lines": lines, "rep_id": rep,
                "due_at": "2026-12-28T00:00:00Z"}
    if kind in ("payment.received", "credit_note.issued"):
        return {**invoice, "amount": _money(rng), "currency": currency}
    return {"amount": _money(rng), "currency": currency, "category": "marketing", "channel": "ads"}


def sample_events(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    weights = [w for w, _ in MIX]
    kinds = [k for _, k in MIX]
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    out = []
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        at = start + timedelta(seconds=i * 7)
        out.append(msgspec.json.encode({
            "event_id": f"evt-{i:09d}", "type": kind,
            "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "source": "hubspot",
            "schema_version": 1, "data": _data(kind, rng),
        }))
    return out


def measure(decode: Callable[[bytes], Any], records: list[bytes], rounds: int = 5) -> float:
    """Best events/s over `rounds` passes (best, to keep scheduler noise out)."""
    best = 0.0
    for _ in range(rounds):
        began = time.perf_counter()
        for raw in records:
            decode(raw)
        best = max(best, len(records) / (time.perf_counter() - began))
    return best


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 100_000
    records = sample_events(count)
    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates())
    rate = measure(decoder.decode, records)
    raw_rate = measure(msgspec.json.Decoder().decode, records)
    size = sum(map(len, records)) / len(records)
    print(f"{count} events, {size:.0f} bytes on average")
    print(f"Decoder.decode:          {rate:>10,.0f} events/s ({1e6 / rate:.1f} µs/event)")
    print(f"untyped msgspec decode:  {raw_rate:>10,.0f} events/s (for comparison)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
