"""Notifiers against a real HTTP server on loopback: SSRF refusals, no redirects, retries, drops, escaping."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from exporters.notifiers import Delivery, NotifyMetrics
from exporters.notify_formats import alertmanager_body, slack_body, slack_escape
from exporters.ssrf import RefusedTarget, check_url
from kpi_state.alert_records import build_record
from kpi_state.thresholds import Notifier

RECORD = build_record(
    status="firing", kpi="win_rate", scope="rep:<!channel>", window="30d", severity="critical",
    direction="higher", starts_at=1793610000.0, ends_at=None, value=0.05, threshold=0.2,
    summary="Win rate is low", runbook="Analyse <http://evil.example|click> & act",
    related=[{"kpi": "calls", "window": "7d", "value": 12.0, "status": "red"}],
)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://2130706433/",
    "http://[::ffff:127.0.0.1]/", "http://0177.0.0.1/", "http://0x7f.1/", "http://10.1.2.3/",
    "http://192.168.1.1/", "http://172.16.0.1/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[::1]/",
    "http://[fd00:ec2::254]/", "http://[fe80::1]/", "http://[64:ff9b::7f00:1]/", "ftp://example.com/",
])
def test_refused_urls(url):
    with pytest.raises(RefusedTarget):
        check_url(url, ())


def test_allowed_host_and_public_address_pass():
    check_url("http://127.0.0.1:9/hook", ("127.0.0.1",))
    check_url("https://93.184.215.14/", ())
    check_url("https://hooks.example.com/x", ())  # names are checked when resolved


class Receiver:
    """A real HTTP server on loopback that fails the first `failures` requests."""

    def __init__(self, failures: int = 0, redirect_to: str | None = None) -> None:
        self.failures, self.redirect_to = failures, redirect_to
        self.requests: list[tuple[dict, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        if len(self.requests) <= self.failures:
            return web.Response(status=503)
        return web.Response(status=200)

    async def __aenter__(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)  # the receiver's own log is not ours
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def delivery(url: str, allow: tuple[str, ...] = ("127.0.0.1",), kind: str = "webhook", **kw):
    registry = CollectorRegistry()
    done: list[str] = []
    d = Delivery(Notifier("ops", kind, url, allow), NotifyMetrics(registry), backoff_s=0.01,
                 on_done=lambda name, ident: done.append(ident), **kw)
    return d, registry, done


def count(registry, name):
    return registry.get_sample_value(f"kpi_pipeline_notifications_{name}_total", {"notifier": "ops"}) or 0


async def test_retries_until_the_receiver_is_back_then_delivers_once():
    async with Receiver(failures=3) as rx:
        d, registry, done = delivery(f"http://127.0.0.1:{rx.port}/hook")
        await d.start()
        assert d.submit(RECORD)
        await asyncio.wait_for(d.queue.join(), 10)
        await d.stop()
    assert len(rx.requests) == 4 and done == [RECORD["id"]]
    assert {h["Idempotency-Key"] for h, _ in rx.requests} == {RECORD["id"]}
    body = rx.requests[-1][1]
    assert body["version"] == "4" and body["alerts"][0]["fingerprint"] == RECORD["fingerprint"]
    assert (count(registry, "sent"), count(registry, "failed"), count(registry, "retried"), count(registry, "dropped")) == (1, 3, 3, 0)


async def test_out_of_attempts_is_dropped_and_counted():
    async with Receiver(failures=100) as rx:
        d, registry, done = delivery(f"http://127.0.0.1:{rx.port}/hook", attempts=3)
        assert not await d.deliver(RECORD["id"], RECORD)
        await d.stop()
    assert len(rx.requests) == 3 and count(registry, "dropped") == 1 and done == [RECORD["id"]]


async def test_full_queue_drops_without_waiting():
    d, registry, _ = delivery("http://127.0.0.1:9/hook", queue_size=1)
    assert d.submit(RECORD) and not d.submit(RECORD)
    assert count(registry, "dropped") == 1


async def test_loopback_name_not_allowed_is_refused_on_resolution():
    async with Receiver() as rx:
        d, registry, _ = delivery(f"http://localhost:{rx.port}/hook", allow=())
        assert not await d.deliver(RECORD["id"], RECORD)
        await d.stop()
    assert rx.requests == [] and count(registry, "dropped") == 1 and count(registry, "failed") == 0


@pytest.mark.parametrize("template", ["http://2130706433:{port}/", "http://[::ffff:127.0.0.1]:{port}/",
                                      "http://127.0.0.1:{port}/"])
async def test_literal_loopback_spellings_are_refused(template):
    async with Receiver() as rx:
        d, registry, _ = delivery(template.format(port=rx.port), allow=())
        assert not await d.deliver(RECORD["id"], RECORD)
        await d.stop()
    assert rx.requests == [] and count(registry, "dropped") == 1


async def test_redirect_to_metadata_is_not_followed():
    async with Receiver(redirect_to="http://169.254.169.254/latest/meta-data") as rx:
        d, registry, _ = delivery(f"http://127.0.0.1:{rx.port}/hook")
        assert not await d.deliver(RECORD["id"], RECORD)
        await d.stop()
    assert len(rx.requests) == 1 and count(registry, "dropped") == 1 and count(registry, "sent") == 0


async def test_secret_in_url_never_reaches_logs_or_metrics(caplog):
    caplog.set_level(logging.DEBUG)
    async with Receiver(failures=100) as rx:
        d, registry, _ = delivery(f"http://127.0.0.1:{rx.port}/services/T0/B0/S3CRETTOKEN?key=S3CRETKEY", attempts=2)
        await d.deliver(RECORD["id"], RECORD)
        await d.stop()
    d2, _, _ = delivery("http://10.0.0.1/services/S3CRETTOKEN", allow=())
    await d2.deliver(RECORD["id"], RECORD)
    await d2.stop()
    text = caplog.text + generate_latest(registry).decode()
    assert "S3CRET" not in text and "notifier ops" in caplog.text


def test_slack_text_is_escaped_and_never_mentions_or_links():
    body = slack_body(RECORD)
    assert body["unfurl_links"] is False and body["unfurl_media"] is False and "link_names" not in body
    texts = [b["text"]["text"] for b in body["blocks"]] + [body["text"]]
    assert all(b["text"]["verbatim"] is True for b in body["blocks"])
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<http" not in joined and "&lt;!channel&gt;" in joined
    assert "&amp; act" in joined
    assert slack_escape("a&<b>") == "a&amp;&lt;b&gt;"
    assert len(slack_body({**RECORD, "annotations": {**RECORD["annotations"], "runbook": "x" * 5000}})["blocks"][1]["text"]["text"]) <= 3000


def test_alertmanager_body_firing_ends_four_intervals_ahead_resolved_at_its_time():
    [firing] = alertmanager_body([RECORD], 60, now=lambda: 1793610000.0)
    assert firing["endsAt"] == "2026-11-02T09:04:00Z" and firing["startsAt"] == "2026-11-02T09:00:00Z"
    assert firing["labels"]["alertname"] == "KpiRed" and all(isinstance(v, str) for v in firing["annotations"].values())
    resolved = {**RECORD, "status": "resolved", "endsAt": "2026-11-03T10:00:00Z"}
    assert alertmanager_body([resolved], 60)[0]["endsAt"] == "2026-11-03T10:00:00Z"
