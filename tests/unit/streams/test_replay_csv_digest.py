"""Pins the envelopes replayed from the example CRM export, so moving code cannot change them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from streams.replay_csv import ColumnMapping, load_product_catalogue, load_rep_directory, replay_file
from streams.settings import DEFAULT_STAGES

FOLDER = Path(__file__).resolve().parents[3] / "examples" / "crm-sales-opportunities"

# Computed on the single-file streams/replay_csv.py (main at 53560aa) before it was split.
EXPECTED = "ef379555622eb569fd9eab02385292e0efc0f4a9c26421f0ebd15c6ec2315ee2"


def test_example_export_replays_to_the_pinned_bytes() -> None:
    mapping = ColumnMapping(product_catalogue=load_product_catalogue(FOLDER / "products.csv"))
    result = replay_file(FOLDER / "sales_pipeline.csv", mapping, stages=DEFAULT_STAGES)
    h = hashlib.sha256()
    h.update(json.dumps(result.events, sort_keys=True).encode())
    h.update(repr(result.skipped).encode())
    h.update(repr(sorted(result.counts.items())).encode())
    h.update(json.dumps(load_rep_directory(FOLDER / "sales_teams.csv"), sort_keys=True).encode())
    assert (len(result.events), len(result.skipped)) == (23_311, 500)
    assert h.hexdigest() == EXPECTED
