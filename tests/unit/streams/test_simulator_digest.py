"""Pins the simulator's seeded bytes, so moving its code around cannot change its output."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from streams.simulator import Simulator

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# Computed on the single-file simulator (main at 53560aa) before it was split into modules.
DEFAULT_2000 = "cdcdf86dce0dfe780440a851a94025299b1582df4e9b932fa258f6b114b861a1"
SCENARIO_60000 = {
    "steady": "4571e99c8ab94d56600f25138bee136351d2fdd4062ae788c1bf53a8614f7cd5",
    "slump": "62fb866a0456cee199b922c0adcb8090c30e28fb81573aa0362e0c70fc9e52a5",
    "growth": "aa62f4f1a88f037e099b87901ffca6d763df135faf7c9ffef1aa2f388184e170",
    "collapse": "2cab414fc3a2e289817e75da2b4c9fba54d9a98b0594ecf162c87c16bdfcae90",
}


def _digest(n: int, **kwargs: object) -> str:
    sim = Simulator(7, start=START, **kwargs)  # type: ignore[arg-type]
    h = hashlib.sha256()
    for r in sim.next_records(n):
        h.update(repr((r.topic_kind, r.key, r.value, r.timestamp, r.bad, r.duplicate)).encode())
    for envelope in sim.rep_upserts():
        h.update(repr(sorted(envelope.items())).encode())
    return h.hexdigest()


def test_first_2000_records_of_seed_7_are_pinned() -> None:
    assert _digest(2000) == DEFAULT_2000


@pytest.mark.parametrize("scenario", sorted(SCENARIO_60000))
def test_each_scenario_with_bad_records_is_pinned(scenario: str) -> None:
    # 60,000 records reach past the slump's and the collapse's start; 5% are malformed.
    assert _digest(60_000, scenario=scenario, bad_ratio=0.05) == SCENARIO_60000[scenario]
