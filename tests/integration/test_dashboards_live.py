"""Every PromQL query of every generated board, against a real Prometheus scraping a worker fed simulated traffic."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from kpi_state.catalogue import CATALOGUE
from streams.simulator import Organisation, Simulator
from tests.conftest import REPO, require
from tests.integration.conftest import wait_for
from tests.integration.prometheus_server import running_prometheus
from tests.integration.reference_check import wait_until_drained
from tests.integration.test_reference_equality import produce

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
UNTIL = datetime(2026, 11, 20, tzinfo=timezone.utc)  # before the wall clock: nothing is in the future
BOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
BY_METRIC = {spec.metric_name: spec for spec in CATALOGUE.values()}
KPI_QUERY = re.compile(r"^max(?: by \((?P<by>[^)]*)\))? \((?P<metric>sales_kpi_\w+)\{(?P<matchers>[^}]*)\}\)$")
MATCHER = re.compile(r'(\w+)(!?=)"([^"]*)"')
# Objectives come with the thresholds engine (kpi_state/thresholds.py): required once it exists.
OBJECTIVES_BUILT = importlib.util.find_spec("kpi_state.thresholds") is not None


def traffic(env: dict[str, str]):
    """Seven weeks of a small organisation, two calendar months, fixed dates and seed."""
    org = Organisation.generate(5, regions=2, teams_per_region=2, reps_per_team=2)
    simulator = Simulator(5, start=START, org=org, bad_ratio=0.01, duplicate_ratio=0.01)
    topics = {"crm": env["KPI_TOPIC_CRM"], "billing": env["KPI_TOPIC_BILLING"]}
    reps = [(env["KPI_TOPIC_REPS"], e["data"]["rep_id"].encode(), json.dumps(e).encode())
            for e in simulator.rep_upserts()]
    records = [(topics[kind], key, value)
               for kind, key, value in simulator.next_batch(1_000_000, until=UNTIL.timestamp())]
    return reps, records, [rep.rep_id for rep in org.reps]


def thresholds_with_objectives(path: Path, rep_ids: list[str]) -> Path:
    """The test thresholds plus objectives for bookings (global and every rep), so attainment has values."""
    document = yaml.safe_load((REPO / "tests" / "data" / "thresholds.yaml").read_text())
    document["kpis"]["bookings"]["objectives"] = [
        {"scope": scope, "window": "month", "value": 50_000 if scope == "global" else 10_000}
        for scope in ["global", *(f"rep:{rep}" for rep in rep_ids)]
    ]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def kpi_records(worker) -> dict[tuple, dict]:
    return {
        (r["kpi"], r["scope"], r["window"], tuple(sorted(r["dims"].items()))): r
        for r in json.loads(worker.get("/kpis"))
    }


def check_kpi_series(expr: str, result: list[dict], records: dict[tuple, dict]) -> None:
    """Each series of a KPI query equals the worker's /kpis record, in the metric's unit."""
    match = KPI_QUERY.match(expr)
    assert match, f"not a KPI query the test understands: {expr}"
    spec = BY_METRIC[match["metric"]]
    fixed = {name: value for name, op, value in MATCHER.findall(match["matchers"]) if op == "="}
    for series in result:
        labels = {**fixed, **series["metric"]}
        kind, ident = labels["scope_kind"], labels["scope_id"]
        scope = "global" if kind == "global" else f"{kind}:{ident}"
        # A dim with a value picks it, `=""` picks the total, one summed away (stage_conversion
        # `by (from)`: each `from` has one `to`) may be anything, as long as one record matches.
        candidates = [
            record for (kpi, rscope, window, dims), record in records.items()
            if (kpi, rscope, window) == (spec.name, scope, labels["window"])
            and all(dict(dims).get(d) == labels[d] if labels.get(d) else
                    (d not in dict(dims) if d in labels else True) for d in spec.dims)
        ]
        assert len(candidates) == 1, f"{expr}: {labels} matches {len(candidates)} /kpis records"
        record = candidates[0]
        value = float(series["value"][1])
        assert math.isclose(value, record["value"] * spec.metric_scale, rel_tol=1e-9, abs_tol=1e-9), (
            expr, labels, value, record)
        if spec.metric_name.endswith("_ratio"):
            assert 0 <= value <= 1, (expr, value)
        if spec.metric_name.endswith("_seconds"):
            assert 0 <= value <= 366 * 86400, (expr, value)


def resolve(expr: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, f"unresolved variable in {expr}"
    return expr


@pytest.mark.timeout(180)
def test_every_board_query_answers_with_plausible_values(pipeline_env, start_worker, tmp_path):
    require(bool(BOARDS), "deploy/grafana/dashboards holds no board (run `make dashboards`)")
    reps, records, rep_ids = traffic(pipeline_env)
    env = dict(pipeline_env, KPI_THRESHOLDS_FILE=str(thresholds_with_objectives(tmp_path / "t.yaml", rep_ids)))
    asyncio.run(produce(env, reps))
    worker = start_worker(env)
    target = worker.web.removeprefix("http://")
    with running_prometheus([target], tmp_path / "prometheus", RULES) as prometheus:
        # Scraped while the traffic flows, so rates and flush times have something to show:
        # the last records leave only once Prometheus has scraped the rest, so at least one
        # flush falls between two scrapes however fast the worker went through the others.
        early, late = records[:-200], records[-200:]
        asyncio.run(produce(env, early))
        status = wait_until_drained(worker, len(early), timeout=120)
        wait_for(lambda: (found := prometheus.query("sum(kpi_pipeline_events_in_total)"))
                 and float(found[0]["value"][1]) == status["events_in"],
                 timeout=30, what="Prometheus to scrape the first part")
        asyncio.run(produce(env, late))
        status = wait_until_drained(worker, len(records), timeout=120)
        records_by_key = kpi_records(worker)

        # The live page passes promtool, as `docker compose` users' Prometheus will read it.
        promtool = shutil.which("promtool")
        require(promtool is not None, "promtool is not installed")
        lint = subprocess.run([promtool, "check", "metrics"], input=worker.get("/metrics"), capture_output=True)
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), (lint.stdout + lint.stderr).decode()

        calls = records_by_key[("calls", "global", "all", ())]["value"]
        wait_for(lambda: prometheus.query('sales_kpi_calls{scope_kind="global",window="all"}') and float(
            prometheus.query('max(sales_kpi_calls{scope_kind="global",window="all"})')[0]["value"][1]) == calls,
            timeout=30, what="Prometheus to scrape the drained worker")
        wait_for(lambda: prometheus.api("rules")["groups"] and all(
            rule.get("lastEvaluation", "").startswith("20") and not rule["lastEvaluation"].startswith("0001")
            for group in prometheus.api("rules")["groups"] for rule in group["rules"]),
            timeout=30, what="every rule evaluated once")
        for group in prometheus.api("rules")["groups"]:
            for rule in group["rules"]:
                assert rule["health"] == "ok", (group["file"], rule["name"], rule.get("lastError"))

        reps_seen = {s["scope_id"] for s in prometheus.api(
            "series", **{"match[]": 'sales_kpi_status{scope_kind="rep"}'})}
        assert reps_seen == set(rep_ids)
        # The rep a user would look at first: the one with the most deals won.
        best = prometheus.query('topk(1, max by (scope_id) (sales_kpi_won_deals{scope_kind="rep", window="all"}))')
        variables = {"rep": best[0]["metric"]["scope_id"], "__rate_interval": "5m"}

        checked = 0
        for path in BOARDS:
            board = json.loads(path.read_text())
            for panel in board["panels"]:
                for query in panel.get("targets", []):
                    expr = resolve(query["expr"], variables)
                    result = prometheus.query(expr)
                    if "objective_attainment" in expr and not OBJECTIVES_BUILT:
                        continue  # the query ran (valid PromQL); its values come with thresholds
                    assert result, f"{path.name} / {panel['title']}: no data for {expr}"
                    values = [float(series["value"][1]) for series in result]
                    assert all(math.isfinite(v) for v in values), (path.name, panel["title"], expr, values)
                    if "sales_kpi_" in expr and "sales_kpi_status" not in expr:
                        check_kpi_series(expr, result, records_by_key)
                    elif panel["fieldConfig"]["defaults"].get("unit") == "s":
                        assert all(0 <= v < 10 * 365 * 86400 for v in values), (panel["title"], values)
                    else:
                        assert all(v >= 0 for v in values), (panel["title"], values)
                    checked += 1
        assert checked >= 60

        # Counts on the quality board add up to what the worker says it did.
        # (Not a rate: the worker may take the whole traffic between two scrapes.)
        wait_for(lambda: float(prometheus.query("sum(kpi_pipeline_events_in_total)")[0]["value"][1])
                 == status["events_in"] > 0, timeout=30, what="Prometheus to scrape every event counted")
        rejected = sum(float(s["value"][1]) for s in prometheus.query(
            "sum by (reason) (kpi_pipeline_events_rejected_total)"))
        assert rejected == status["events_rejected"] > 0
        duplicates = float(prometheus.query("sum(kpi_pipeline_duplicates_total)")[0]["value"][1])
        assert duplicates == status["duplicates"] > 0
        newest = prometheus.query("max by (topic) (kpi_pipeline_input_newest_event_timestamp_seconds)")
        assert {s["metric"]["topic"] for s in newest} == {env["KPI_TOPIC_CRM"], env["KPI_TOPIC_BILLING"]}
        assert all(START.timestamp() < float(s["value"][1]) <= UNTIL.timestamp() for s in newest)
