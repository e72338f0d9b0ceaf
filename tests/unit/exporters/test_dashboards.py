"""The generated Grafana boards: current with the code (golden files), wired to the data source, coloured by the thresholds file."""

import json
import re
from pathlib import Path

import pytest
import yaml

from exporters.dashboards import BoardsError, build_all, packaged_thresholds, read_thresholds, render
from exporters.dashboards.panels import GLOBAL, Scope, Thresholds, kpi_query
from exporters.prometheus import STATUS_METRIC
from kpi_state.catalogue import CATALOGUE
from tests.conftest import REPO

BOARDS_DIR = REPO / "deploy" / "grafana" / "dashboards"
TEST_THRESHOLDS = REPO / "tests" / "data" / "thresholds.yaml"
# The file `make dashboards` reads: the shipped default once it exists, the test copy before.
SOURCE = packaged_thresholds() or TEST_THRESHOLDS


@pytest.fixture(scope="module")
def boards():
    return build_all(read_thresholds(SOURCE), "EUR")


def panels(board):
    return [p for p in board["panels"] if p["type"] != "row"]


def test_committed_boards_are_what_the_code_generates(boards):
    committed = sorted(path.name for path in BOARDS_DIR.glob("*.json"))
    assert committed == sorted(f"kpi-{role}.json" for role in boards)
    for role, board in boards.items():
        on_disk = (BOARDS_DIR / f"kpi-{role}.json").read_text(encoding="utf-8")
        assert on_disk == render(board), f"kpi-{role}.json is stale: run `make dashboards`"


def test_every_query_uses_the_provisioned_data_source(boards):
    provisioning = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    uid = provisioning["datasources"][0]["uid"]
    for board in boards.values():
        for panel in panels(board):
            assert panel["datasource"]["uid"] == uid
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid


def test_panel_ids_and_board_uids_are_unique(boards):
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    for board in boards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]


def test_every_kpi_metric_queried_exists_in_the_catalogue(boards):
    names = {spec.metric_name for spec in CATALOGUE.values()} | {STATUS_METRIC}
    queried = set()
    for board in boards.values():
        for panel in panels(board):
            for target in panel["targets"]:
                queried |= set(re.findall(r"\bsales_kpi_\w+", target["expr"]))
    assert queried <= names, queried - names
    # Each role's headline KPIs are on its board.
    assert {"sales_kpi_win_ratio", "sales_kpi_meetings_booked", "sales_kpi_bookings"} <= queried


def test_the_rep_board_follows_the_rep_variable(boards):
    board = boards["rep"]
    assert [v["name"] for v in board["templating"]["list"]] == ["rep"]
    kpi_targets = [t["expr"] for p in panels(board) for t in p["targets"]]
    assert all('scope_id="$rep"' in expr for expr in kpi_targets)


def test_each_role_reads_its_own_figures(boards):
    def exprs(role):
        return " ".join(t["expr"] for p in panels(boards[role]) for t in p["targets"])

    director = exprs("director")
    assert 'scope_kind="rep"' in director and "by (scope_id)" in director  # reps side by side
    assert "sales_kpi_objective_attainment" in director and "by (from)" in director
    executive = exprs("executive")
    for name in ("revenue_growth", "price_effect", "volume_effect", "gross_margin_ratio", "cac", "clv",
                 "ltv_to_cac", "payment_delay_seconds", "overdue_receivables"):
        assert f"sales_kpi_{name}{{" in executive, name
    quality = exprs("quality")
    for name in ("kpi_pipeline_events_rejected_total", "kpi_pipeline_duplicates_total",
                 "kpi_pipeline_late_events_total", "kpi_pipeline_input_newest_event_timestamp_seconds",
                 "kpi_pipeline_consumer_lag_records"):
        assert name in quality, name


def test_colours_come_from_the_thresholds_file_in_metric_units(boards):
    document = yaml.safe_load(SOURCE.read_text())["kpis"]

    def steps(role, title_start):
        panel = next(p for p in panels(boards[role]) if p["title"].startswith(title_start))
        return [(s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    win = document["win_rate"]  # higher is better
    assert steps("director", "Win rate (") == [(None, "red"), (win["red"], "#FF9830"), (win["amber"], "green")]
    pay = document["days_to_pay"]  # lower is better, days on the file, seconds on the board
    assert steps("executive", "Days to pay") == [
        (None, "green"), (pay["amber"] * 86400, "#FF9830"), (pay["red"] * 86400, "red")
    ]


def test_a_scope_override_colours_that_scope():
    thresholds = Thresholds({"win_rate": {"direction": "higher", "red": 0.2, "amber": 0.3,
                                          "overrides": [{"scope": "global", "red": 0.1}]}})
    assert [s.value for s in thresholds.steps("win_rate", "global")] == [None, 0.1, 0.3]
    assert [s.value for s in thresholds.steps("win_rate", "")] == [None, 0.2, 0.3]
    assert thresholds.steps("price_effect") is None


def test_kpi_queries_pick_totals_or_split_by_dims():
    assert kpi_query("pipeline_value", GLOBAL, "all") == (
        'max (sales_kpi_pipeline_value{scope_kind="global", scope_id="global", window="all", stage=""})'
    )
    assert kpi_query("stage_conversion", Scope("rep", "$rep"), "90d", by=("from",)) == (
        'max by (from) (sales_kpi_stage_conversion_ratio{scope_kind="rep", scope_id="$rep", window="90d", from!=""})'
    )


def test_a_bad_thresholds_file_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("version: 1\nkpis:\n  win_rate: [unclosed\n")
    with pytest.raises(BoardsError, match=r"t.yaml:\d+: not valid YAML"):
        read_thresholds(bad)
    with pytest.raises(BoardsError, match="cannot read"):
        read_thresholds(tmp_path / "missing.yaml")


def test_the_dashboards_command_writes_every_board(tmp_path):
    from typer.testing import CliRunner

    from agents.cli import cli

    result = CliRunner().invoke(cli, ["dashboards", "--out", str(tmp_path), "--thresholds", str(SOURCE),
                                      "--currency", "USD"])
    assert result.exit_code == 0, result.output
    board = json.loads((tmp_path / "kpi-executive.json").read_text())
    units = {p["fieldConfig"]["defaults"].get("unit") for p in panels(board)}
    assert "currencyUSD" in units and "currencyEUR" not in units
    result = CliRunner().invoke(cli, ["dashboards", "--out", str(tmp_path), "--thresholds", str(tmp_path / "no.yaml")])
    assert result.exit_code == 2 and "cannot read" in " ".join(result.output.split())
