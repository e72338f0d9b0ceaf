"""Every mistake a newcomer makes gets a short message naming the problem and the fix, the
right exit code, and never a traceback: one table for the CLI, one for the HTTP API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

STUBS = Path(__file__).parent / "stubs"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    clean.update(env or {})
    clean["COLUMNS"] = "100"
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        env=clean, capture_output=True, text=True, timeout=timeout,
    )


def broken_jsonl(tmp_path: Path) -> str:
    path = tmp_path / "events.jsonl"
    good = {"event_id": "e-1", "type": "call.logged", "occurred_at": "2026-11-02T10:00:00Z",
            "data": {"rep_id": "r-1"}}
    path.write_text("\n".join([json.dumps(good), "{not json", "[1, 2]", '{"event_id": "e-2"}']) + "\n")
    return str(path)


def all_broken_jsonl(tmp_path: Path) -> str:
    path = tmp_path / "broken.jsonl"
    path.write_text("hello\n\n42\n")
    return str(path)


# (id, argv, env, exit code, texts that must all appear in the output)
CASES = [
    ("redis-url-env", ["worker"], {"KPI_REDIS_URL": "localhost:6379"}, 2,
     ["KPI_REDIS_URL", "redis://HOST:PORT/DB", "'localhost:6379'"]),
    ("redis-url-flag", ["worker", "--redis", "localhost:6379"], {}, 2,
     ["KPI_REDIS_URL", "redis://HOST:PORT/DB"]),
    ("markup-in-value", ["worker", "--redis", "x[/DB][bold]"], {}, 2, ["KPI_REDIS_URL", "[/DB][bold]"]),
    ("stages-not-json", ["worker"], {"KPI_STAGES": "notjson"}, 2, ["KPI_STAGES", "JSON list"]),
    ("stages-with-won", ["worker"], {"KPI_STAGES": '["a", "won"]'}, 2, ["KPI_STAGES", "won/lost"]),
    ("currency-without-rates", ["worker"], {"KPI_REPORTING_CURRENCY": "JPY"}, 2,
     ["JPY", "KPI_EXCHANGE_RATES", "EUR, GBP, USD"]),
    ("rates-not-json", ["worker"], {"KPI_EXCHANGE_RATES": "eur=1"}, 2, ["KPI_EXCHANGE_RATES", "JSON object"]),
    ("rates-not-decimal", ["worker"], {"KPI_EXCHANGE_RATES": '{"USD": "a lot"}'}, 2,
     ["KPI_EXCHANGE_RATES", "USD", "not a decimal"]),
    ("web-port-word", ["worker"], {"KPI_WEB_PORT": "not-a-port"}, 2, ["KPI_WEB_PORT"]),
    ("timezone", ["worker"], {"KPI_TIMEZONE": "Mars/Olympus"}, 2, ["KPI_TIMEZONE", "Europe/Paris"]),
    ("broker-url-no-scheme", ["worker"], {"KPI_BROKER_URL": "localhost:9092"}, 2,
     ["KPI_BROKER_URL", "kafka://HOST:PORT"]),
    ("sasl-without-user", ["worker"], {"KPI_SECURITY_PROTOCOL": "SASL_SSL"}, 2,
     ["KPI_SASL_USERNAME", "KPI_SASL_PASSWORD"]),
    ("protocol", ["worker"], {"KPI_SECURITY_PROTOCOL": "TLS"}, 2, ["KPI_SECURITY_PROTOCOL", "SASL_SSL"]),
    ("flush-interval", ["worker"], {"KPI_FLUSH_INTERVAL_S": "0"}, 2, ["KPI_FLUSH_INTERVAL_S"]),
    ("reps-file-missing", ["worker", "--reps-file", "/nonexistent/reps.csv"], {}, 2,
     ["KPI_REPS_FILE", "no such file"]),
    ("password-never-echoed", ["worker"], {"KPI_SASL_PASSWORD": "hunter2-secret",
                                           "KPI_SECURITY_PROTOCOL": "SASL_PLAIN"}, 2,
     ["KPI_SECURITY_PROTOCOL"]),
    ("broker-unreachable", ["worker", "--broker", "kafka://127.0.0.1:1"], {}, 1,
     ["cannot reach the broker", "KPI_BROKER_URL"]),
    ("simulate-unreachable", ["simulate", "--broker", "kafka://127.0.0.1:1", "--count", "5"], {}, 1,
     ["cannot send to the broker", "KPI_BROKER_URL"]),
    ("simulate-scenario", ["simulate", "--scenario", "boom"], {}, 2, ["steady", "slump", "growth"]),
    ("replay-unreachable", ["replay", "{broken_jsonl}", "--format", "jsonl", "--broker",
                            "kafka://127.0.0.1:1"], {}, 1, ["could not send", "--dry-run"]),
    ("replay-jsonl-lines", ["replay", "{broken_jsonl}", "--format", "jsonl", "--dry-run"], {}, 0,
     ["line 2: not_json", "line 3: not_object", "line 4: missing_field", "dead-letter"]),
    ("replay-jsonl-nothing", ["replay", "{all_broken_jsonl}", "--format", "jsonl", "--dry-run"], {}, 2,
     ["no line is a usable event", "line 1: not_json", "line 3: not_object"]),
    ("replay-format", ["replay", "{broken_jsonl}", "--format", "xml"], {}, 2, ["opportunities-csv", "jsonl"]),
    ("replay-no-file", ["replay", "/nonexistent.csv", "--format", "jsonl"], {}, 2, ["does not exist"]),
    ("kpis-window", ["kpis", "--window", "fortnight"], {}, 2, ["fortnight", "day, week, month"]),
    ("kpis-url-scheme", ["kpis", "--url", "127.0.0.1:6066"], {}, 2, ["http://127.0.0.1:6066"]),
    ("kpis-kpi", ["kpis", "--kpi", "winrate"], {}, 2, ["winrate", "did you mean win_rate", "sales_cycle_days"]),
    ("kpis-scope", ["kpis", "--scope", "globl"], {}, 2, ["globl", "rep:ID"]),
    ("kpis-scope-no-id", ["kpis", "--scope", "rep:"], {}, 2, ["rep:", "needs an id"]),
    ("kpis-no-worker", ["kpis", "--url", "http://127.0.0.1:1"], {}, 1, ["no worker answers", "kpi-pipeline worker"]),
    ("top-role", ["top", "--role", "ceo"], {}, 2, ["rep", "director", "executive", "quality"]),
    ("top-window", ["top", "--window", "fortnight"], {}, 2, ["day, week, month"]),
    ("demo-scenario", ["demo", "--scenario", "boom"], {}, 2, ["steady"]),
    ("demo-bad-setting", ["demo"], {"KPI_STAGES": "notjson"}, 2, ["KPI_STAGES"]),
    ("demo-without-embedded", ["demo", "--duration", "5"], {"PYTHONPATH": str(STUBS)}, 1,
     ["pip install 'kpi-pipeline[embedded]'"]),
    ("unknown-command", ["frobnicate"], {}, 2, ["No such command"]),
    ("version", ["--version"], {}, 0, ["kpi-pipeline 0.1.0"]),
    ("short-help", ["-h"], {}, 0, ["Usage", "worker", "simulate", "replay", "kpis", "top", "demo"]),
    ("command-short-help", ["kpis", "-h"], {}, 0, ["--scope", "--window", "--kpi"]),
]


def assert_clean(result: subprocess.CompletedProcess, max_lines: int = 8) -> None:
    err = result.stderr
    assert "Traceback" not in err and "Error:" not in err.replace("─ Error ─", ""), err
    assert "Unclosed" not in err and "Task was destroyed" not in err, err
    assert len(err.strip().splitlines()) <= max_lines, err


@pytest.mark.parametrize(("argv", "env", "code", "texts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_mistake_gets_a_short_message(tmp_path, argv, env, code, texts):
    files = {"{broken_jsonl}": broken_jsonl(tmp_path), "{all_broken_jsonl}": all_broken_jsonl(tmp_path)}
    result = run(*[files.get(arg, arg) for arg in argv], env=env)
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    for text in texts:
        assert text in output, f"{text!r} missing from:\n{output}"
    assert "hunter2-secret" not in output
    assert_clean(result, max_lines=12 if code == 0 else 8)


def test_a_second_worker_on_a_busy_port_is_told_about_kpi_web_port():
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("worker", env={"KPI_WEB_PORT": str(port)})
    assert result.returncode == 2, result.stderr
    assert f":{port}" in result.stderr and "KPI_WEB_PORT" in result.stderr and "--web-port" in result.stderr
    assert_clean(result)


def get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


HTTP_CASES = [
    ("kpi=winrate", 400, ["win_rate", "sales_cycle_days"]),
    ("kpi=sales_cycle", 400, ["sales_cycle_days"]),
    ("scope=globl", 400, ["global", "rep:ID"]),
    ("scope=rep:", 400, ["needs an id"]),
    ("window=fortnight", 400, ["7d", "quarter"]),
    ("start=yesterday", 400, ["2026-11-01"]),
    ("colour=red", 400, ["scope, window, kpi, start"]),
]


@pytest.mark.integration
def test_http_and_kpis_refuse_what_does_not_exist(pipeline_env, start_worker):
    worker = start_worker(pipeline_env)
    for query, code, texts in HTTP_CASES:
        status, body = get(f"{worker.web}/kpis?{query}")
        assert status == code, (query, body)
        for text in texts:
            assert text in body["error"] or text in body["accepted"], (query, body)
    # A well-formed scope with no data yet is the only empty answer.
    assert get(f"{worker.web}/kpis?scope=rep:nobody&window=day&kpi=calls") == (200, [])
    result = run("kpis", "--url", worker.web, "--scope", "rep:nobody")
    assert result.returncode == 0 and "no KPI values for scope 'rep:nobody' yet" in result.stdout
    assert_clean(result)
    result = run("kpis", "--url", worker.web + "/", "--kpi", "calls", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
