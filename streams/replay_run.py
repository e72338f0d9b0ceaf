"""`kpi-pipeline replay`: turns an export into contract events and produces them in event-time order."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.producer import EventProducer
from streams.replay_csv import ColumnMapping, ReplayResult, SkippedRow, replay_file
from streams.settings import Settings

BILLING_PREFIXES = ("invoice.", "payment.", "credit_note.", "spend.")
FORMATS = ("opportunities-csv", "jsonl")


@dataclass
class ReplayPlan:
    """What a replay will send, before anything is sent."""

    records: list[tuple[str, bytes | None, bytes]]  # (topic, key, value)
    counts: Counter = field(default_factory=Counter)
    skipped: list[SkippedRow] = field(default_factory=list)


def topic_for(event_type: str, settings: Settings) -> str:
    if event_type == "rep.upserted":
        return settings.topic_reps
    if event_type.startswith(BILLING_PREFIXES):
        return settings.topic_billing
    return settings.topic_crm


def entity_key(data: dict[str, Any]) -> bytes | None:
    """The natural key of an envelope's entity (the pipeline repartitions anyway)."""
    for name in ("opportunity_id", "customer_id", "rep_id", "team_id"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value.encode()
    return None


def _encode(envelope: dict[str, Any], settings: Settings) -> tuple[str, bytes | None, bytes]:
    return (
        topic_for(envelope["type"], settings),
        entity_key(envelope.get("data") or {}),
        json.dumps(envelope, separators=(",", ":")).encode(),
    )


def plan_csv(
    path: Path, mapping: ColumnMapping, settings: Settings, reps: list[dict[str, Any]]
) -> tuple[ReplayPlan, ReplayResult]:
    result = replay_file(path, mapping, stages=settings.stages)
    plan = ReplayPlan([_encode(env, settings) for env in [*reps, *result.events]])
    plan.counts.update(result.counts)
    plan.counts["reps"] = len(reps)
    plan.skipped = result.skipped
    return plan, result


def _jsonl_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


def _jsonl_problem(line: bytes) -> tuple[str, str, Any]:
    """(reason, detail, envelope) of one line; reason '' when it looks like an event."""
    try:
        envelope = json.loads(line)
    except ValueError as exc:
        return "not_json", str(exc).split(":")[0], None
    if not isinstance(envelope, dict):
        return "not_object", f"a JSON {type(envelope).__name__}, not an object", None
    event_type = envelope.get("type")
    if not isinstance(event_type, str) or not event_type:
        return "missing_field", "no `type`", envelope
    missing = [name for name in ("event_id", "occurred_at", "data") if name not in envelope]
    if missing:
        return "missing_field", "no " + ", ".join(f"`{m}`" for m in missing), envelope
    return "", "", envelope


def plan_jsonl(path: Path, settings: Settings) -> ReplayPlan:
    """Envelopes as they are: bytes unchanged, routed by type; unusable lines are listed
    (line number and reason) and still go to the CRM topic so the dead-letter queue keeps them."""
    plan = ReplayPlan([])
    for number, line in _jsonl_lines(path):
        reason, detail, envelope = _jsonl_problem(line)
        event_type = envelope.get("type") if isinstance(envelope, dict) else None
        event_type = event_type if isinstance(event_type, str) else ""
        data = envelope.get("data") if isinstance(envelope, dict) else None
        key = entity_key(data) if isinstance(data, dict) else None
        plan.records.append((topic_for(event_type, settings), key, line))
        if reason:
            plan.skipped.append(SkippedRow(row=number, line=number, opportunity_id=None,
                                           reason=reason, detail=detail))
            plan.counts["unreadable"] += 1
        else:
            plan.counts[event_type] += 1
    return plan


def to_backfill(plan: ReplayPlan, settings: Settings) -> None:
    """Send CRM and billing events to the backfill topic (reps stay on sales.reps)."""
    live = (settings.topic_crm, settings.topic_billing)
    plan.records = [
        (settings.topic_backfill if topic in live else topic, key, value)
        for topic, key, value in plan.records
    ]


def time_span(plan: ReplayPlan) -> tuple[float, float] | None:
    """Oldest and newest occurred_at of the plan's events (None if none parses)."""
    from datetime import datetime

    times = []
    for _, _, value in plan.records:
        try:
            stamp = json.loads(value).get("occurred_at")
            times.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        except (ValueError, AttributeError, TypeError):
            continue
    return (min(times), max(times)) if times else None


def rejection_warnings(plan: ReplayPlan, settings: Settings, *, live: bool, now: float) -> list[str]:
    """What the pipeline would refuse of this plan, said before it is sent."""
    span = time_span(plan)
    if span is None:
        return []
    oldest, newest = span
    out = []
    if newest > now + settings.future_skew_s:
        out.append("some events are dated in the future (more than the allowed clock skew): "
                   "they will be dead-lettered as future_timestamp")
    if live and now - oldest > settings.lateness_s:
        days = (now - oldest) / 86400
        out.append(f"events up to {days:.0f} days old go to the live topics: a pipeline that already "
                   f"reads today's events dead-letters those older than its lateness "
                   f"({settings.lateness_s / 86400:g} days) as too_late. Send history to the backfill "
                   f"topic {settings.topic_backfill!r} instead (the default, without --to live).")
    return out


async def send_plan(plan: ReplayPlan, settings: Settings) -> int:
    async with EventProducer(settings) as producer:
        sent = await producer.send_many(plan.records)
        await producer.flush()
    return sent
