"""The benchmark's outputs: one table on the terminal, the ratio in words, JSON to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def ratio_sentence(baseline_rate: float | None, pipeline_rate: float | None) -> str | None:
    """(b)/(a) in words, or None when either side was not measured."""
    if not baseline_rate or pipeline_rate is None:
        return None
    ratio = pipeline_rate / baseline_rate
    return (f"The full pipeline ran at {ratio:.4f} of the plain consumer's rate "
            f"({pipeline_rate:,.0f} vs {baseline_rate:,.0f} events/s): (b)/(a) = {ratio:.4f}"
            f"{' (target 0.5)' if ratio < 0.5 else ', at or above the 0.5 target'}.")


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if unit in ("events/s", "B"):
            return f"{value:,.0f}"
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _spread(runs: list[float] | None) -> str:
    """`; median of 3 runs (lowest–highest/s)`, or nothing for a single run."""
    if not runs or len(runs) < 2:
        return ""
    return f"; median of {len(runs)} runs ({min(runs):,.0f}–{max(runs):,.0f}/s)"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, value, unit, note) for every number in `results`."""
    out: list[tuple[str, str, str, str]] = []
    a, b = results.get("a"), results.get("b")
    if a:
        out.append(("(a) plain consumer + JSON decode", _fmt(a["rate"], "events/s"), "events/s",
                    f"{a['events']:,} events in {a['seconds']:.2f} s" + _spread(a.get("runs"))))
    if b:
        out.append(("(b) pipeline, 1 worker, from start", _fmt(b["rate"], "events/s"), "events/s",
                    f"{b['seconds_from_start']:.1f} s; ready after {_fmt(b['seconds_to_ready'], 's')} s"))
        out.append(("(b) pipeline, from first record", _fmt(b["rate_from_first"], "events/s"),
                    "events/s", f"{b['records_published']:,} KPI records published"))
    if results.get("ratio_b_a") is not None:
        out.append(("(b)/(a)", f"{results['ratio_b_a']:.4f}", "ratio", "target ≥ 0.5"))
    c = results.get("c")
    if c:
        caught = c.get("catch_up") or {}
        if caught:
            out.append(("(c) its worker's catch-up (probe thresholds)", _fmt(caught["rate"], "events/s"),
                        "events/s", "then the steady load below"))
        for name, title, counted in (("kpi_values", "(c) produce → kpi.values", "markers"),
                                     ("alerts", "(c) day closed → red alert", "red days")):
            one = c.get(name) or {}
            if one.get("p50_s") is not None:
                missing = f", {one['missing']} never seen" if one.get("missing") else ""
                out.append((title, f"{one['p50_s']:.3f} / {one['p99_s']:.3f} / {one['max_s']:.3f}",
                            "s p50/p99/max",
                            f"{one['samples']} {counted} at {c['offered_rate']:,.0f} events/s{missing}"))
            else:
                out.append((title, "—", "", one.get("note") or f"no {counted} seen ({one.get('missing', 0)} sent)"))
    d = results.get("d")
    if d:
        if d.get("available"):
            out.append(("(d) memory per opportunity", _fmt(d.get("bytes_per_opportunity"), "B"), "B",
                        f"{d.get('opportunities', 0):,} opportunities"))
            out.append(("(d) memory per rep", _fmt(d.get("bytes_per_rep"), "B"), "B", f"{d.get('reps', 0):,} reps"))
        else:
            out.append(("(d) memory", "—", "", d.get("note", "memory probe unavailable")))
    e = results.get("e")
    if e:
        out.append((f"(e) pipeline, {e['reps']:,} reps", _fmt(e["rate"], "events/s"), "events/s",
                    f"{e['change']:+.1%} against (b)" if e.get("change") is not None else ""))
    f = results.get("f")
    if f:
        out.append(("(f) pipeline, 2 workers", _fmt(f["rate"], "events/s"), "events/s",
                    f"{f['ratio']:.2f} × one worker" if f.get("ratio") is not None else ""))
    return out


def print_report(console: Console, results: dict[str, Any]) -> None:
    table = Table(title=f"kpi-pipeline bench · {results['events']:,} events, {results['reps']:,} reps, "
                        f"seed {results['seed']}")
    for column, justify in (("measurement", "left"), ("value", "right"), ("unit", "left"), ("note", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    sentence = results.get("ratio_sentence")
    if sentence:
        console.print(sentence, highlight=False)


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
