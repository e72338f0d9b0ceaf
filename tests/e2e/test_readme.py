"""Every command of the README is run here (or names the test that runs it), and the README
lists every setting, scenario and KPI, so it cannot drift from the product."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kpi_state.catalogue import CATALOGUE
from streams.settings import Settings
from streams.simulator import SCENARIOS
from tests.conftest import REPO
from tests.e2e.test_top import run_in_pty
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.e2e

README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    """Command lines of the README's sh blocks: comments dropped, continuations joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


# Commands run by other tests (the reason says which), not by this module.
ELSEWHERE = {
    "make demo": "tests/e2e/test_cli.py::test_demo_shows_kpis_and_leaves_nothing_behind runs `kpi-pipeline demo`",
    "make test": "the suite itself",
    "make unit": "the unit part of the suite (tests/unit)",
    "make soak": "tests/integration/test_crash_recovery.py, run again with other seeds",
    "kpi-pipeline worker": "the start_worker fixture runs exactly this command",
    "make bench": "tests/e2e/test_bench.py runs `kpi-pipeline bench --only a,b` on a small backlog",
    "kpi-pipeline bench --only a,b --events 20000": "tests/e2e/test_bench.py, with --events 3000",
    "docker compose up --build": "no Docker engine here: tests/unit/deploy/test_stack_files.py validates the file",
    ".venv/bin/python -m agents.memory_probe --opportunities 100000 --reps 500 [--json]":
        "tests/unit/agents/test_memory_probe.py runs the probe's main on a small load",
}
COMPOSE = [
    "export KPI_BROKER_URL='kafka://b1:9092;kafka://b2:9092'",
    "docker compose up --build --no-deps redis worker-1 worker-2 prometheus alertmanager grafana",
]
EXPORTS = [
    "export KPI_BROKER_URL='kafka://kafka-1:9092;kafka://kafka-2:9092'",
    "export KPI_REDIS_URL=redis://redis:6379/0",
]
AGAINST_A_WORKER = [
    "kpi-pipeline simulate --rate 200 --duration 10 --scenario slump",
    "kpi-pipeline kpis --scope global",
    "kpi-pipeline kpis --scope rep:r-01 --window 30d",
    "kpi-pipeline kpis --scope global --kpi win_rate --json",
    "kpi-pipeline top --role executive",
    "kpi-pipeline top --role rep --scope rep:r-01 --window week",
    "kpi-pipeline --version",
]
REPLAY = [
    "D=examples/crm-sales-opportunities",
    "kpi-pipeline replay $D/sales_pipeline.csv --format opportunities-csv --reps $D/sales_teams.csv "
    "--products $D/products.csv --skipped-report skipped.csv",
]
INSTALL = ["pip install ."]


def test_every_readme_command_is_run_somewhere():
    known = [*ELSEWHERE, *COMPOSE, *EXPORTS, *AGAINST_A_WORKER, *REPLAY, *INSTALL]
    assert sorted(set(readme_commands())) == sorted(set(known))


def test_makefile_targets_the_readme_names():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:.*\n\t.*kpi-pipeline demo", makefile, re.M)
    assert re.search(r"^test:.*\n\t.*pytest \$\(PYTEST_ARGS\)", makefile, re.M)
    assert re.search(r"^unit:.*\n\t.*pytest tests/unit", makefile, re.M)
    assert re.search(r"^soak:.*\n(\t.*\n)*\t.*tests/integration/test_crash_recovery\.py", makefile, re.M)


def test_the_exports_give_two_brokers_and_a_redis():
    script = "\n".join([*EXPORTS, f"{sys.executable} -c 'from streams.settings import Settings; "
                                  "s = Settings(); print(s.broker_hosts, s.redis_url)'"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    result = subprocess.run(["bash", "-e", "-c", script], env=env, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['kafka-1:9092', 'kafka-2:9092'] redis://redis:6379/0"


def test_the_compose_commands_name_real_services_and_brokers():
    import yaml

    services = set(yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"])
    named = COMPOSE[1].split("--no-deps ", 1)[1].split()
    assert set(named) <= services, set(named) - services
    assert "kafka" not in named and "simulator" not in named  # "leave out kafka and simulator"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    script = f"{COMPOSE[0]}\n{sys.executable} -c 'from streams.settings import Settings; print(Settings().broker_hosts)'"
    result = subprocess.run(["bash", "-e", "-c", script], env=env, cwd=REPO, capture_output=True, text=True)
    assert result.stdout.strip() == "['b1:9092', 'b2:9092']", result.stderr


def test_pip_install_builds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps",
         "--report", str(tmp_path / "report.json"), "."],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [item["metadata"]["name"] for item in report["install"]] == ["kpi-pipeline"]


def test_every_setting_scenario_and_kpi_is_in_the_readme():
    for name in Settings.model_fields:
        assert f"`KPI_{name.upper()}`" in README, f"KPI_{name.upper()} missing from the settings table"
    listed = re.search(r"`simulate` scenarios: (.*?)\.", README).group(1)
    assert re.findall(r"`(\w+)`", listed) == list(SCENARIOS)
    for kpi in CATALOGUE:
        assert f"`{kpi}`" in README, kpi


def shell(command: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(env, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", COLUMNS="80")
    return subprocess.run(["bash", "-e", "-c", command], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.integration
def test_readme_commands_against_a_worker(pipeline_env, start_worker, tmp_path):
    worker = start_worker(pipeline_env)
    url = f" --url {worker.web}"
    simulate, kpis_global, kpis_rep, kpis_json, top_exec, top_rep, version = AGAINST_A_WORKER
    result = shell(simulate, pipeline_env, tmp_path, timeout=60)
    assert result.returncode == 0 and re.search(r"sent \d+ events", result.stdout), result.stderr
    wait_for(lambda: json.loads(worker.get("/kpis?scope=rep:r-01&window=30d&kpi=calls"))
             and json.loads(worker.get("/kpis?scope=global&kpi=win_rate")),
             timeout=60, what="the simulated traffic in /kpis")

    result = shell(kpis_global + url, pipeline_env, tmp_path)
    assert result.returncode == 0 and "KPIs of global" in result.stdout, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    result = shell(kpis_rep + url, pipeline_env, tmp_path)
    assert result.returncode == 0 and "KPIs of rep:r-01" in result.stdout and "30d" in result.stdout
    assert "…" not in result.stdout, result.stdout  # no name cut short
    result = shell(kpis_json + url, pipeline_env, tmp_path)
    records = json.loads(result.stdout)
    assert records and {r["kpi"] for r in records} == {"win_rate"} and {r["scope"] for r in records} == {"global"}

    screen = run_in_pty([str(BIN / "kpi-pipeline"), *top_exec.split()[1:], "--url", worker.web], 3)
    assert "Executive · 30d" in screen and "Traceback" not in screen
    screen = run_in_pty([str(BIN / "kpi-pipeline"), *top_rep.split()[1:], "--url", worker.web], 3)
    assert "Rep · week · rep:r-01" in screen and "rep:r-01 " in screen and "rep:r-02" not in screen

    result = shell(version, pipeline_env, tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("kpi-pipeline ")


@pytest.mark.integration
def test_readme_replay_of_the_shipped_export(broker_url, tmp_path):
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env.update(KPI_BROKER_URL=broker_url, KPI_TOPIC_CRM=f"crm.readme.{tag}",
               KPI_TOPIC_REPS=f"reps.readme.{tag}", KPI_TOPIC_BILLING=f"billing.readme.{tag}")
    (tmp_path / "examples").symlink_to(REPO / "examples")
    result = shell("\n".join(REPLAY), env, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    counts = dict(re.findall(r"│ ([a-z_: ]+?)\s+│\s+([\d,]+) │", result.stdout))
    assert counts["won"] == "4,238" and counts["lost"] == "2,473", result.stdout
    assert re.search(r"sent [\d,]+ records", result.stdout)
    assert len((tmp_path / "skipped.csv").read_text().splitlines()) == 1 + 500
