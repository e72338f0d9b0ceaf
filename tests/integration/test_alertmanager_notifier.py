"""The Alertmanager notifier against a real Alertmanager (Debian prometheus-alertmanager): the alert
shows up active, then resolved with our endsAt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from agents.embedded import free_port
from exporters.notifiers import Delivery, NotifyMetrics
from kpi_state.alert_records import build_record
from kpi_state.thresholds import Notifier

pytestmark = pytest.mark.integration

CONFIG = "route: {receiver: none}\nreceivers: [{name: none}]\n"


def binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Alertmanager is missing (Debian package prometheus-alertmanager)")
        pytest.skip("Alertmanager not installed")
    return found


@pytest.fixture
def alertmanager(tmp_path):
    (tmp_path / "am.yml").write_text(CONFIG)
    port, cluster = free_port(), free_port()
    process = subprocess.Popen(
        [binary(), f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path}",
         f"--web.listen-address=127.0.0.1:{port}", f"--cluster.listen-address=127.0.0.1:{cluster}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "alertmanager did not start"
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)


def active(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true&silenced=false&inhibited=false", timeout=3) as r:
        return json.loads(r.read())


def record(status: str, ends_at: float | None) -> dict:
    return build_record(status=status, kpi="win_rate", scope="rep:r-01", window="30d", severity="critical",
                        direction="higher", starts_at=time.time() - 3600, ends_at=ends_at, value=0.05,
                        threshold=0.08, summary="Win rate is low", runbook="Analyse, act, follow up.", related=[])


async def test_firing_then_resolved_reach_alertmanager(alertmanager):
    registry = CollectorRegistry()
    delivery = Delivery(Notifier("am", "alertmanager", f"{alertmanager}/api/v2/alerts", ("127.0.0.1",), 60),
                        NotifyMetrics(registry))
    firing = record("firing", None)
    assert await delivery.deliver(firing["id"], firing)
    [alert] = active(alertmanager)
    assert alert["labels"] == firing["labels"] and alert["fingerprint"] == firing["fingerprint"]
    assert alert["annotations"]["runbook"] == "Analyse, act, follow up."
    resolved = record("resolved", time.time() - 1)
    assert await delivery.deliver(resolved["id"], resolved)
    assert active(alertmanager) == []
    await delivery.stop()
    assert registry.get_sample_value("kpi_pipeline_notifications_sent_total", {"notifier": "am"}) == 2
