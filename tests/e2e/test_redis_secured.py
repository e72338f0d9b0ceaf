"""The Redis serving layer with an ACL user, a password and TLS, as a hardened Redis asks."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest
import redis

from agents.embedded import EmbeddedServer, free_port
from tests.conftest import require
from tests.integration.conftest import wait_for
from tests.integration.test_calls_slice import envelope, produce

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SECRET = "s3cret-redis-pass"


def test_worker_writes_through_tls_as_an_acl_user(pipeline_env, start_worker, tmp_path):
    server = shutil.which("redis-server")
    require(server is not None, "redis-server (Debian package redis-server) is needed for TLS")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
         "-out", "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True,
    )
    port = free_port()
    prefix = pipeline_env["KPI_REDIS_PREFIX"]
    argv = [server, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(tmp_path), "--tls-cert-file", str(tmp_path / "cert.pem"),
            "--tls-key-file", str(tmp_path / "key.pem"), "--tls-ca-cert-file", str(tmp_path / "cert.pem"),
            "--tls-auth-clients", "no",
            # No anonymous access; the pipeline's user may touch only its own keys and channel.
            "--user", "default", "off",
            "--user", "kpi", "on", f">{SECRET}", f"~{prefix}:*", f"&{prefix}:*", "+@all"]
    with EmbeddedServer("redis-server (TLS)", argv, port, log_path=tmp_path / "redis.log"):
        env = dict(pipeline_env, KPI_REDIS_URL=f"rediss://127.0.0.1:{port}/0",
                   KPI_REDIS_USERNAME="kpi", KPI_REDIS_PASSWORD=SECRET,
                   KPI_REDIS_SSL_CAFILE=str(tmp_path / "cert.pem"))
        worker = start_worker(env)
        asyncio.run(produce(env, [(None, envelope("r-1", "2026-11-02T10:00:00Z")) for _ in range(3)]))
        client = redis.Redis(host="127.0.0.1", port=port, username="kpi", password=SECRET, ssl=True,
                             ssl_ca_certs=str(tmp_path / "cert.pem"))

        def stored():
            raw = client.hget(f"{prefix}:current:rep:r-1:all", "calls")
            return raw is not None and json.loads(raw)["value"] == 3

        wait_for(stored, what="records written over TLS by the ACL user")
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(tmp_path / "cert.pem"),
                        username="kpi", password="wrong").ping()
        assert SECRET not in worker.log.read_text()
        assert "redis unreachable" not in worker.log.read_text()
        # A wrong password: the worker runs on and says what to check, once.
        wrong = start_worker(dict(env, KPI_REDIS_PASSWORD="not-the-password"))
        wait_for(lambda: "refused the worker" in wrong.log.read_text(), what="the refusal logged")
        log = wrong.log.read_text()
        assert log.count("refused the worker") == 1 and "KPI_REDIS_PASSWORD" in log
        assert "not-the-password" not in log and wrong.process.poll() is None
