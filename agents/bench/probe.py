"""The latency probe's traffic: a probe rep whose daily calls turn red and green, day-completing ticks.

Alerts are judged per whole event-time day, once the watermark (the slowest of every path
input partition → entity partition) has passed the day's end (kpi_state/watermark.py).
So that a probe can time it, each day boundary is closed explicitly: events dated just
after it are sent on every input partition, for TICK_KEYS entity keys each, enough to reach
every entity partition whatever the hash (4 partitions: a miss has odds of 4·(3/4)^32).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import msgspec
import yaml

from kpi_state.calendar import iso_utc
from kpi_state.thresholds import load_thresholds

PROBE_REP = "r-bench-probe"
PROBE_SCOPE = f"rep:{PROBE_REP}"
PROBE_TEAM, PROBE_REGION = "t-bench-probe", "bench-probe"
TICK_KEYS = 32
RED_DAY_CALLS, GREEN_DAY_CALLS = 1, 20  # 10.5 markers a day on average
PROBE_RED_BELOW = 5  # calls a day: below it the probe's day is red


def probe_thresholds(path: Path) -> Path:
    """The shipped thresholds, but `calls` is judged per day, red for the probe scope only.

    Every other scope keeps red at 0 (a count is never below it), so the probe adds one
    alert stream and nothing else pages.
    """
    text = resources.files("kpi_state").joinpath("defaults/thresholds.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    config["kpis"]["calls"] = {
        "windows": ["day"], "direction": "higher", "red": 0, "amber": 0, "clear_margin": 0,
        "pending": "0s", "severity": "warning", "summary": "Probe: few calls logged",
        "overrides": [{"scope": PROBE_SCOPE, "red": PROBE_RED_BELOW, "amber": PROBE_RED_BELOW,
                       "min_sample": 0}],
    }
    body = yaml.safe_dump(config, sort_keys=False)
    load_thresholds(body, str(path))  # refuse here, not in the worker's log
    path.write_text(body, encoding="utf-8")
    return path


def calls_today(day_index: int) -> int:
    """Even days are red (1 call), odd days green (20 calls): one alert episode per two days."""
    return RED_DAY_CALLS if day_index % 2 == 0 else GREEN_DAY_CALLS


def _envelope(event_id: str, etype: str, ts: float, data: dict) -> bytes:
    return msgspec.json.encode({"event_id": event_id, "type": etype, "occurred_at": iso_utc(ts),
                                "source": "bench-probe", "data": data})


def probe_call(day_index: int, number: int, ts: float) -> tuple[bytes, bytes]:
    """The probe rep's `number`-th call (1-based) of simulated day `day_index`."""
    value = _envelope(f"bench-probe-{day_index}-{number}", "call.logged", ts,
                      {"rep_id": PROBE_REP, "duration_s": 60, "outcome": "connected"})
    return PROBE_REP.encode(), value


def ticks(boundary: float, crm_partitions: int, billing_partitions: int
          ) -> list[tuple[str, int, bytes, bytes]]:
    """("crm"|"billing", input partition, key, value) dated one second after `boundary`."""
    out = []
    at = boundary + 1
    stamp = int(boundary)
    for partition in range(crm_partitions):
        for k in range(TICK_KEYS):
            rep = f"r-bench-tick-{k:02d}"
            out.append(("crm", partition, rep.encode(), _envelope(
                f"bench-tick-{stamp}-c{partition}-{k}", "call.logged", at,
                {"rep_id": rep, "duration_s": 1, "outcome": "no_answer"})))
    for partition in range(billing_partitions):
        for k in range(TICK_KEYS):
            team = f"t-bench-tick-{k:02d}"
            out.append(("billing", partition, team.encode(), _envelope(
                f"bench-tick-{stamp}-b{partition}-{k}", "spend.recorded", at,
                {"amount": "1.00", "currency": "EUR", "category": "sales", "team_id": team})))
    return out


def probe_reps_file(source: Path, target: Path) -> Path:
    """The backlog's reps file plus the probe rep in a team and region of its own."""
    target.write_text(source.read_text(encoding="utf-8") + f"{PROBE_REP},{PROBE_TEAM},{PROBE_REGION}\n",
                      encoding="utf-8")
    return target
