"""(d) Resident memory per opportunity and per rep, from `python -m agents.memory_probe` in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

PROBE_MODULE = "agents.memory_probe"
# About 40 CPU minutes for 1,000,000 opportunities on this machine (docs/BENCHMARKS.md):
# half an hour stopped it short in every run of the ninth round.
TIMEOUT_S = 3600.0


def parse_probe_output(stdout: str) -> dict[str, Any]:
    """The last line of stdout that is a JSON object (the probe may log before it)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            found = json.loads(line)
            if isinstance(found, dict):
                return found
    try:
        found = json.loads(stdout)
    except ValueError:
        raise ValueError("the memory probe printed no JSON object") from None
    if not isinstance(found, dict):
        raise ValueError("the memory probe printed JSON that is not an object")
    return found


def measure_memory(opportunities: int, reps: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the probe; say plainly when it is missing or fails instead of inventing a number."""
    if importlib.util.find_spec(PROBE_MODULE) is None:
        note = f"memory probe unavailable: {PROBE_MODULE} is not in this tree"
        say(f"(d) {note}")
        return {"available": False, "note": note}
    say(f"(d) memory probe: {opportunities:,} opportunities over {reps:,} reps (a subprocess)")
    argv = [sys.executable, "-m", PROBE_MODULE, "--opportunities", str(opportunities),
            "--reps", str(reps), "--json"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        note = f"memory probe did not finish within {TIMEOUT_S:.0f} s"
        say(f"(d) {note}")
        return {"available": False, "note": note}
    if done.returncode != 0:
        note = f"memory probe failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        say(f"(d) {note}")
        return {"available": False, "note": note}
    try:
        found = parse_probe_output(done.stdout)
    except ValueError as exc:
        say(f"(d) {exc}")
        return {"available": False, "note": str(exc)}
    missing = [k for k in ("bytes_per_opportunity", "bytes_per_rep") if k not in found]
    if missing:
        note = f"memory probe output lacks {', '.join(missing)}"
        say(f"(d) {note}")
        return {"available": False, "note": note, "probe": found}
    result = {"available": True, "opportunities": opportunities, "reps": reps, **found}
    say(f"(d) {found['bytes_per_opportunity']:,.0f} B per opportunity, {found['bytes_per_rep']:,.0f} B per rep")
    return result
