"""`kpi-pipeline demo`: embedded servers when none is configured, simulator, worker, live board."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live

from agents.embedded import (
    EmbeddedServer,
    embedded_broker,
    embedded_redis,
    free_port,
    port_open,
    redis_reachable,
)
from exporters.alerts_board import alerts_table, fetch_alerts
from exporters.board import BOARD_WINDOWS, board_table

DEFAULT_WEB_PORT = 6066


def _child(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _wait_ready(url: str, worker: subprocess.Popen, timeout: float) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def run_demo(
    *, duration: float | None, rate: float, seed: int, scenario: str, console: Console
) -> int:
    """Run everything until Ctrl-C or `duration`; return the exit code."""
    workdir = Path(tempfile.mkdtemp(prefix="kpi-demo-"))
    env = dict(os.environ)
    env.setdefault("KPI_DATA_DIR", str(workdir / "data"))
    with ExitStack() as stack:
        if "KPI_BROKER_URL" not in os.environ:
            broker: EmbeddedServer = stack.enter_context(embedded_broker(log_dir=workdir))
            env["KPI_BROKER_URL"] = f"kafka://{broker.url_host_port}"
            console.print(f"embedded broker (Tansu) on {broker.url_host_port}")
        redis_url = os.environ.get("KPI_REDIS_URL")
        if not redis_url or not redis_reachable(redis_url):
            redis = stack.enter_context(embedded_redis(log_dir=workdir))
            env["KPI_REDIS_URL"] = f"redis://{redis.url_host_port}/0"
            console.print(f"embedded Redis-compatible server (valkey) on {redis.url_host_port}")
        if "KPI_WEB_PORT" not in os.environ:
            busy = port_open("127.0.0.1", DEFAULT_WEB_PORT)
            env["KPI_WEB_PORT"] = str(free_port() if busy else DEFAULT_WEB_PORT)
        web = f"http://127.0.0.1:{env['KPI_WEB_PORT']}"
        # Short group timeouts: a demo worker that dies must not delay the next one.
        env.setdefault("KPI_SESSION_TIMEOUT_S", "10")
        env.setdefault("KPI_HEARTBEAT_INTERVAL_S", "1")

        me = [sys.executable, "-m", "agents.cli"]
        worker = _child([*me, "worker"], env, workdir / "worker.log")
        stack.callback(_stop, worker)
        console.print(f"worker starting; logs in {workdir}")
        if not _wait_ready(web, worker, timeout=90):
            console.print(f"[bold red]the worker did not become ready[/]; see {workdir / 'worker.log'}")
            return 1
        sim_argv = [*me, "simulate", "--rate", str(rate), "--seed", str(seed), "--scenario", scenario]
        if duration is not None:
            sim_argv += ["--duration", str(duration)]
        simulator = _child(sim_argv, env, workdir / "simulator.log")
        stack.callback(_stop, simulator)
        console.print(
            f"simulator running at {rate:g} events/s.  Board below; also try:\n"
            f"  curl {web}/metrics    curl '{web}/kpis?scope=global'"
        )
        watch_board(web, console=console, duration=duration, alive=lambda: worker.poll() is None)
        if worker.poll() is not None:
            console.print(f"[bold red]the worker stopped unexpectedly (exit {worker.returncode})[/]")
            return 1
        console.print(f"logs: {workdir}")
        return 0


def render_board(web: str):
    """The board from a worker's current records (None when the worker does not answer)."""
    from agents.cli import fetch_kpis

    records: list = []
    for window in BOARD_WINDOWS:
        fetched = fetch_kpis(web, window=window)
        if fetched is None:
            return None
        records += fetched
    board = board_table(records, title=f"Sales KPIs · {time.strftime('%H:%M:%S')}")
    firing = fetch_alerts(web)
    return Group(board, alerts_table(firing)) if firing else board


def watch_board(
    web: str, *, console: Console, interval: float = 2.0, duration: float | None = None,
    alive=lambda: True,
) -> int:
    """Redraw the board until Ctrl-C, `duration`, or `alive()` turns false."""
    deadline = time.monotonic() + duration if duration else None
    interactive = console.is_terminal and duration is None

    def running() -> bool:
        return alive() and (deadline is None or time.monotonic() < deadline)

    def frame():
        return render_board(web) or f"no worker answers at {web}"

    try:
        if interactive:
            with Live(frame(), console=console, refresh_per_second=1) as live:
                while running():
                    time.sleep(interval)
                    live.update(frame())
        else:
            next_print = time.monotonic()
            while running():
                if time.monotonic() >= next_print:
                    console.print(frame())
                    next_print = time.monotonic() + 10
                time.sleep(0.5)
            console.print(frame())
    except KeyboardInterrupt:
        console.print("stopping…")
    return 0
