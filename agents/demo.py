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

from rich.console import Console

from agents.embedded import (
    EmbeddedServer,
    die_with_parent,
    embedded_broker,
    embedded_redis,
    free_port,
    port_open,
    redis_reachable,
)
from agents.top import watch_board

DEFAULT_WEB_PORT = 6066


DEMO_LIVE_ACTIVITY = 100  # once caught up with the clock, so the day and 7d columns move
STOP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


class DemoStopped(BaseException):
    """SIGHUP (terminal closed) or SIGTERM: leave through the same cleanup as Ctrl-C."""


def _stop_on_signal(signum: int, frame: object) -> None:
    for sig in (*STOP_SIGNALS, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup short
    raise DemoStopped(signum)


def _child(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=die_with_parent,
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
    *, duration: float | None, rate: float, seed: int, scenario: str, console: Console,
    role: str = "director",
) -> int:
    """Run everything until Ctrl-C, SIGHUP, SIGTERM or `duration`; return the exit code."""
    previous = {sig: signal.signal(sig, _stop_on_signal) for sig in STOP_SIGNALS}
    try:
        return _run_demo(duration=duration, rate=rate, seed=seed, scenario=scenario,
                         console=console, role=role)
    except DemoStopped as stopped:
        return 128 + int(stopped.args[0])
    except KeyboardInterrupt:
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_demo(
    *, duration: float | None, rate: float, seed: int, scenario: str, console: Console, role: str
) -> int:
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
        sim_argv = [*me, "simulate", "--rate", str(rate), "--seed", str(seed), "--scenario", scenario,
                    "--live-activity", str(DEMO_LIVE_ACTIVITY)]
        if duration is not None:
            sim_argv += ["--duration", str(duration)]
        simulator = _child(sim_argv, env, workdir / "simulator.log")
        stack.callback(_stop, simulator)
        console.print(
            f"simulator: {rate:g} events/s to catch up, then {DEMO_LIVE_ACTIVITY}× live activity.\n"
            f"Other views, in another terminal:\n  kpi-pipeline top --url {web} --role rep|executive|quality",
            highlight=False,
        )
        watch_board(web, console=console, role=role, duration=duration,
                    alive=lambda: worker.poll() is None)
        if worker.poll() is not None:
            console.print(f"[bold red]the worker stopped unexpectedly (exit {worker.returncode})[/]")
            return 1
        console.print(f"logs: {workdir}")
        return 0
