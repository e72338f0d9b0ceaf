"""docker-compose.yml and every file it mounts, checked without a Docker engine (docker-compose config, promtool, amtool)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require


def tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (.ci/run installs it from Debian)")
    return path  # type: ignore[return-value]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=dict(os.environ, LANG="C"))


@pytest.fixture(scope="module")
def stack() -> dict:
    """The compose file as docker-compose resolves it (anchors merged, paths absolute)."""
    result = run(tool("docker-compose"), "-f", "docker-compose.yml", "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def mounts(service: dict) -> dict[str, Path]:
    """container path → host path of the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = (volume.split(":")[:2] if isinstance(volume, str)
                          else (volume["source"], volume["target"]))
        if source.startswith("/"):
            out[target] = Path(source)
    return out


def host_path(service: dict, container_path: str) -> Path:
    for target, source in sorted(mounts(service).items(), key=lambda item: -len(item[0])):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / os.path.relpath(container_path, target) if container_path != target else source
    raise AssertionError(f"{container_path} is not mounted")


def test_every_mounted_file_exists_in_the_repository(stack):
    bound = [(name, source) for name, service in stack["services"].items() for source in mounts(service).values()]
    assert len(bound) >= 5
    for name, source in bound:
        assert source.exists(), f"{name} mounts {source}, which does not exist"
        assert REPO in source.parents, f"{name} mounts {source} from outside the repository"


def test_kafka_is_one_kraft_node_with_single_replica_internal_topics(stack):
    kafka = stack["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "1"
    assert str(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    workers = [s for s in stack["services"].values() if s.get("command", [])[-1:] == ["worker"]]
    assert len(workers) == 2
    for worker in workers:
        assert worker["environment"]["KPI_BROKER_URL"] == "kafka://kafka:9092"
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_prometheus_config_and_its_rules_pass_promtool(stack, tmp_path):
    prometheus = stack["services"]["prometheus"]
    config_path = host_path(prometheus, "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    # Point the rule globs at the mounted host files, so promtool checks the rules too.
    config["rule_files"] = [str(host_path(prometheus, pattern.rsplit("/", 1)[0]) / pattern.rsplit("/", 1)[1])
                            for pattern in config["rule_files"]]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = run(tool("promtool"), "check", "config", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sorted(host_path(prometheus, "/etc/prometheus/rules").glob("*.yml"))
    assert rules, "no rule file is mounted"
    for path in rules:  # promtool names every rule file it parsed
        assert f"Checking {path}" in result.stdout, f"{path} was not checked"
    # Every worker is scraped, on the port it listens on.
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "kpi-pipeline")
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    workers = {f"{name}:6066" for name, s in stack["services"].items() if s.get("command", [])[-1:] == ["worker"]}
    assert targets == workers


def test_alertmanager_config_passes_amtool(stack):
    config = host_path(stack["services"]["alertmanager"], "/etc/alertmanager/alertmanager.yml")
    result = run(tool("amtool"), "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    alertmanager = yaml.safe_load((host_path(stack["services"]["prometheus"], "/etc/prometheus/prometheus.yml")).read_text())
    targets = alertmanager["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


def test_grafana_provisioning_finds_the_data_source_and_the_boards(stack):
    grafana = stack["services"]["grafana"]
    provisioning = host_path(grafana, "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    source = sources["datasources"][0]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["uid"]
    providers = yaml.safe_load((provisioning / "dashboards" / "kpi-pipeline.yaml").read_text())["providers"]
    boards_dir = host_path(grafana, providers[0]["options"]["path"])
    boards = sorted(boards_dir.glob("*.json"))
    assert [b.name for b in boards] == ["kpi-director.json", "kpi-executive.json", "kpi-quality.json", "kpi-rep.json"]
    for board in boards:
        document = json.loads(board.read_text())
        assert document["uid"] and document["panels"]
        for panel in document["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == source["uid"], (board.name, panel["title"])


def test_the_image_copies_only_what_exists():
    lines = (REPO / "Dockerfile").read_text().splitlines()
    copied = [line.split()[1] for line in lines if line.startswith("COPY ")]
    assert "pyproject.toml" in copied
    for source in copied:
        assert (REPO / source).exists(), source
