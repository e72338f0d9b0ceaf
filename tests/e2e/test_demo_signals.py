"""`kpi-pipeline demo` owns its children: the terminal closing (SIGHUP) or a SIGTERM stops the
broker, Redis, worker and simulator it started, and nothing is left behind."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.embedded import free_port, port_open

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_demo_stops_everything_it_started(signum):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env.update(KPI_WEB_PORT=str(free_port()), COLUMNS="80")
    demo = subprocess.Popen([sys.executable, "-m", "agents.cli", "demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = b""
    try:
        deadline = time.monotonic() + 120
        while b"Other views" not in output:
            assert time.monotonic() < deadline and demo.poll() is None, output.decode()
            if select.select([demo.stdout], [], [], 0.5)[0]:
                output += os.read(demo.stdout.fileno(), 65536)
        children = descendants(demo.pid)
        names = {Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in children}
        assert len(children) >= 4, names  # broker, Redis, worker, simulator
        ports = [int(p) for p in re.findall(rb"on 127\.0\.0\.1:(\d+)", output)]
        assert len(ports) == 2, output.decode()
        demo.send_signal(signum)
        assert demo.wait(45) == 128 + signum
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if alive(pid)], names
        assert not any(port_open("127.0.0.1", port) for port in ports)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
