"""Request bodies of the notifiers: generic webhook, Slack incoming webhook, Alertmanager API v2."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

SLACK_TEXT_LIMIT = 3000  # characters in one Slack text object


def webhook_body(record: dict[str, Any], receiver: str = "kpi-pipeline") -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) around one record, plus its idempotency key."""
    return {
        "version": "4",
        "groupKey": f"{record['labels']['kpi']}|{record['labels']['scope']}|{record['labels']['window']}",
        "status": record["status"],
        "receiver": receiver,
        "groupLabels": {"alertname": record["labels"]["alertname"]},
        "commonLabels": record["labels"],
        "commonAnnotations": record["annotations"],
        "externalURL": "",
        "truncatedAlerts": 0,
        "idempotencyKey": record["id"],
        "alerts": [{**record, "generatorURL": ""}],
    }


def slack_escape(text: str) -> str:
    """Slack's control characters, `&` first: blocks <!channel>, <@U…> mentions and <url|label> links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str) -> str:
    return text if len(text) <= SLACK_TEXT_LIMIT else text[: SLACK_TEXT_LIMIT - 1] + "…"


def slack_body(record: dict[str, Any]) -> dict[str, Any]:
    """Every piece of text comes from KPI names, scope ids and the thresholds file: all escaped."""
    ann = record["annotations"]
    icon = ":red_circle:" if record["status"] == "firing" else ":large_green_circle:"
    head = f"{icon} *{slack_escape(record['status'].upper())}* {slack_escape(ann['summary'])}"
    lines = [head, slack_escape(ann["description"])]
    reading = record.get("context", {}).get("reading")
    if reading:
        lines.append(f"_{slack_escape(reading)}_")
    related = record.get("context", {}).get("related", [])
    if related:
        lines.append(" · ".join(slack_escape(f"{r['kpi']} {r['window']}: {r['status']}") for r in related))
    runbook = ann.get("runbook")
    text = _clip("\n".join(lines))
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}]
    if runbook:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(slack_escape(runbook)), "verbatim": True}})
    return {
        "text": _clip(f"{slack_escape(record['status'])}: {slack_escape(ann['summary'])}"),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def alertmanager_body(records: list[dict[str, Any]], resend_interval_s: float = 60.0,
                      now: Callable[[], float] = time.time) -> list[dict[str, Any]]:
    """POST /api/v2/alerts: firing ones end 4 resend intervals from now unless re-sent (as Prometheus does)."""
    from kpi_state.calendar import iso_utc

    out = []
    for record in records:
        ends = record["endsAt"] if record["status"] == "resolved" else iso_utc(now() + 4 * resend_interval_s)
        out.append({
            "labels": {k: v for k, v in record["labels"].items() if v},
            "annotations": {k: str(v) for k, v in record["annotations"].items() if v},
            "startsAt": record["startsAt"],
            "endsAt": ends,
        })
    return out
