"""`kpi-pipeline top` driven in an 80×24 pseudo-terminal for a few refreshes, one role at a time."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaProducer

from streams.simulator import Simulator
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

START = datetime(2026, 11, 2, tzinfo=timezone.utc)
UNTIL = datetime(2026, 11, 20, tzinfo=timezone.utc)
STYLE = re.compile(r"\x1b\[[0-9;]*m|\x1b\][^\x07]*\x07|\x1b\[\?[0-9;]*[hl]")
MOVES = re.compile(r"\x1b\[[0-9;]*[A-HJKf]|\r")  # cursor moves and erasures end a screen line


async def produce_simulated(env: dict[str, str]) -> tuple[int, int]:
    """Sends the simulated traffic; returns (records sent, distinct calls among them)."""
    simulator = Simulator(7, start=START)
    calls: set[str] = set()
    topics = {"crm": env["KPI_TOPIC_CRM"], "billing": env["KPI_TOPIC_BILLING"]}
    producer = AIOKafkaProducer(bootstrap_servers=env["KPI_BROKER_URL"].removeprefix("kafka://"))
    await producer.start()
    sent = 0
    try:
        for env_ in simulator.rep_upserts():
            await producer.send(env["KPI_TOPIC_REPS"], key=env_["data"]["rep_id"].encode(),
                                value=json.dumps(env_).encode())
        while batch := simulator.next_batch(2000, until=UNTIL.timestamp()):
            for kind, key, value in batch:
                await producer.send(topics[kind], key=key, value=value)
                sent += 1
                event = json.loads(value)
                if event.get("type") == "call.logged":
                    calls.add(event["event_id"])
        await producer.flush()
    finally:
        await producer.stop()
    return sent, len(calls)


def run_in_pty(argv: list[str], seconds: float) -> str:
    """Run `argv` on an 80×24 pseudo-terminal for `seconds`, then Ctrl-C; the screen text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    os.set_blocking(master, False)
    while time.monotonic() < deadline or process.poll() is None:
        if time.monotonic() >= deadline and process.poll() is None:
            process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10**6
            stop_by = time.monotonic() + 10
        try:
            chunks.append(os.read(master, 65536))
        except BlockingIOError:
            time.sleep(0.05)
        except OSError:
            break
        if deadline > 10**5 and time.monotonic() > stop_by:
            process.kill()
    process.wait(10)
    os.close(master)
    return MOVES.sub("\n", STYLE.sub("", b"".join(chunks).decode(errors="replace")))


def top(worker, role: str, seconds: float = 4.0) -> str:
    return run_in_pty([sys.executable, "-m", "agents.cli", "top", "--url", worker.web, "--role", role,
                       "--interval", "0.5"], seconds)


def test_each_role_sees_its_view_in_80_by_24(pipeline_env, start_worker):
    worker = start_worker(pipeline_env)
    sent, calls_sent = asyncio.run(produce_simulated(pipeline_env))
    assert sent > 1000

    def settled():
        rows = json.loads(worker.get("/kpis?scope=global&window=all&kpi=calls"))
        status = json.loads(worker.get("/status"))
        return rows and rows[0]["value"] == calls_sent and status["unpublished"] == 0
    wait_for(settled, timeout=120, what="every simulated call counted and published")

    screens = {role: top(worker, role) for role in ("rep", "director", "executive", "quality")}
    for role, screen in screens.items():
        lines = [line for line in screen.split("\n") if line.strip()]
        assert lines, role
        assert max(len(line) for line in lines) <= 80, (role, max(lines, key=len))
        assert "Traceback" not in screen, screen
        assert "other views: kpi-pipeline top --role" in screen, screen

    rep = screens["rep"]
    assert "Rep · 7d" in rep
    for heading in ("calls", "meetings", "win rate", "bookings", "pipeline"):
        assert heading in rep
    assert "team:" not in rep and "global " not in rep
    calls = json.loads(worker.get("/kpis?scope=rep:r-01&window=7d&kpi=calls"))[0]["value"]
    row = next(line for line in rep.split("\n") if line.startswith("rep:r-01 "))
    assert row.split()[1] == f"{calls:.0f}", row  # fewer than 1000: printed whole

    director = screens["director"]
    assert "Sales director · 30d" in director
    for heading in ("bookings", "win rate", "cycle", "pipeline ·all", "calls"):
        assert heading in director
    assert re.search(r"^global\s", director, re.M) and "team:t-" in director and "rep:r-" in director
    # The company, its teams and reps do not fit 24 lines: pages turn by themselves (how
    # many depends on how many firing alerts take lines under the board).
    pages = re.findall(r"page (\d+)/(\d+)", director)
    assert pages and pages[0][0] == "1" and int(pages[0][1]) >= 2, pages
    assert ("2", pages[0][1]) in pages, pages

    executive = screens["executive"]
    assert "Executive · 30d" in executive
    for heading in ("revenue", "margin", "CAC", "CLV", "LTV:CAC"):
        assert heading in executive
    assert "region:" in executive and "rep:r-" not in executive
    revenue = json.loads(worker.get("/kpis?scope=global&window=30d&kpi=revenue"))[0]["value"]
    assert revenue > 1000
    row = next(line for line in executive.split("\n") if line.startswith("global "))
    assert re.fullmatch(r"\d+(\.\d)?[kM]", row.split()[1]), row  # short numbers: 12.3k, 1.2M

    quality = screens["quality"]
    assert "Data quality" in quality and "events in" in quality and "DLQ reason" in quality
    assert "ready" in quality and "yes" in quality
