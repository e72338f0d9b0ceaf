"""Pins what the decoder makes of a seeded stream with 20% malformed records, verdicts included."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime

from kpi_state.errors import InvalidEvent
from streams.currency import Rates
from streams.decode import Decoder
from streams.settings import DEFAULT_STAGES
from streams.simulator import Simulator

# Computed on the single-file streams/decode.py (main at 53560aa) before it was split.
EXPECTED = "a5ccef40e80d198bcbc0f18df3ade38793f961b6796f84c3acb2b1ab7821ec1e"


def test_decoded_events_and_rejections_are_pinned() -> None:
    decoder = Decoder(stages=DEFAULT_STAGES, rates=Rates("EUR", {"USD": "0.9", "GBP": "1.17"}))
    sim = Simulator(7, start=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), bad_ratio=0.2)
    h = hashlib.sha256()
    reasons: Counter[str] = Counter()
    for record in sim.next_records(20_000):
        try:
            h.update(repr(decoder.decode(record.value)).encode())
        except InvalidEvent as exc:
            reasons[exc.reason] += 1
            h.update(repr((exc.reason, exc.detail)).encode())
    assert len(reasons) >= 10  # most malformed kinds were exercised, not just one
    assert h.hexdigest() == EXPECTED
