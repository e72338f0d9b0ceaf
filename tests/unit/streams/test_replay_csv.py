"""Tests for streams.replay_csv: CRM opportunity export rows -> contract envelopes."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from streams.replay_csv import (
    ColumnMapping,
    CsvFormatError,
    ReplayResult,
    convert,
    load_product_catalogue,
    load_rep_directory,
    read_csv,
    replay_file,
    slugify,
)

STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"


def rows_of(*lines: str) -> list[dict[str, str]]:
    """Dict rows of a small sample written in the sample file's column layout."""
    return list(csv.DictReader(io.StringIO("\n".join((HEADER, *lines)))))


def run(*lines: str, mapping: ColumnMapping | None = None) -> ReplayResult:
    return convert(rows_of(*lines), mapping or ColumnMapping(), stages=STAGES)


def brief(result: ReplayResult) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, occurred_at, data) per event: what a rule test compares."""
    return [(e["type"], e["occurred_at"], e["data"]) for e in result.events]


def write(tmp_path: Path, text: str, name: str = "sample.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# --- rules -------------------------------------------------------------------------------

OPP = {"opportunity_id": "OPP1", "rep_id": "moses-frase"}
CREATED = {**OPP, "stage": "prospecting", "account_id": "cancity", "product": "GTX Basic"}
QUALIFIED = {**OPP, "to_stage": "qualified", "from_stage": "prospecting"}

RULE_CASES = [
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,1054", None,
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED),
         ("opportunity.won", "2017-03-01T00:00:00Z", {**OPP, "amount": "1054", "currency": "USD"})],
        id="won: created and engaged at engage date, won at close with amount",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Lost,2016-10-20,2017-03-01,0", None,
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED),
         ("opportunity.lost", "2017-03-01T00:00:00Z", OPP)],
        id="lost: no amount on the lost event",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,,Engaging,2016-10-20,,", None,
        [("opportunity.created", "2016-10-20T00:00:00Z", {**OPP, "stage": "prospecting",
                                                          "product": "GTX Basic"}),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED)],
        id="engaging without account: open, account_id omitted",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Engaging,2016-10-20,2099-01-01,500", None,
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED)],
        id="engaging: a close date on an open deal is a forecast, not an event",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Prospecting,2016-10-20,,", None,
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED)],
        id="prospecting with a date: created only",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Won,,2017-03-01,10", None,
        [("opportunity.created", "2017-03-01T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2017-03-01T00:00:00Z", QUALIFIED),
         ("opportunity.won", "2017-03-01T00:00:00Z", {**OPP, "amount": "10", "currency": "USD"})],
        id="won without engage date: created at the first known date",
    ),
    pytest.param(
        " OPP1 , Moses Frase ,GTX Basic,Cancity, won ,2016-10-20,2017-03-01, 12.50 ", None,
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED),
         ("opportunity.won", "2017-03-01T00:00:00Z",
          {**OPP, "amount": "12.50", "currency": "USD"})],
        id="spaces trimmed, stage values matched ignoring case, decimals kept exact",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,1E+3",
        ColumnMapping(currency="EUR"),
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED),
         ("opportunity.won", "2017-03-01T00:00:00Z", {**OPP, "amount": "1000", "currency": "EUR"})],
        id="currency is a setting; amounts never in exponent form",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Lost,2016-07-20,2017-01-05,0",
        ColumnMapping(timezone="Europe/Paris"),
        [("opportunity.created", "2016-07-20T00:00:00+02:00", CREATED),
         ("opportunity.stage_changed", "2016-07-20T00:00:00+02:00", QUALIFIED),
         ("opportunity.lost", "2017-01-05T00:00:00+01:00", OPP)],
        id="dates are local midnight in the configured time zone",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Lost,20/10/2016,2017-03-01T14:30:00+0100,0",
        ColumnMapping(date_formats=("%d/%m/%Y", "%Y-%m-%dT%H:%M:%S%z")),
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", QUALIFIED),
         ("opportunity.lost", "2017-03-01T14:30:00+01:00", OPP)],
        id="several date formats, an explicit offset is kept",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Lost,2016-10-20,2017-03-01,0",
        ColumnMapping(id_prefix="maven-"),
        [("opportunity.created", "2016-10-20T00:00:00Z",
          {**CREATED, "opportunity_id": "maven-OPP1", "account_id": "maven-cancity"}),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z",
          {**QUALIFIED, "opportunity_id": "maven-OPP1"}),
         ("opportunity.lost", "2017-03-01T00:00:00Z", {**OPP, "opportunity_id": "maven-OPP1"})],
        id="id prefix namespaces opportunity and account ids, not reps",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Engaging,2016-10-20,,",
        ColumnMapping(stage_map={"Prospecting": "prospecting", "Engaging": "meeting",
                                 "Won": "won", "Lost": "lost"}, engaged_stage="meeting"),
        [("opportunity.created", "2016-10-20T00:00:00Z", CREATED),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z",
          {**QUALIFIED, "to_stage": "meeting"})],
        id="stage mapping: Engaging can mean another configured stage",
    ),
    pytest.param(
        "OPP1,Moses Frase,GTX Basic,Cancity,Engaging,2016-10-20,,",
        ColumnMapping(created_stage="qualified"),
        [("opportunity.created", "2016-10-20T00:00:00Z", {**CREATED, "stage": "qualified"})],
        id="no stage change when created in the engaged stage already",
    ),
    pytest.param(
        "OPP1,Moses Frase,,,Lost,2016-10-20,2017-03-01,",
        ColumnMapping(rep_id_of=lambda name: "r-" + name.split()[-1].lower()),
        [("opportunity.created", "2016-10-20T00:00:00Z", {**OPP, "rep_id": "r-frase",
                                                          "stage": "prospecting"}),
         ("opportunity.stage_changed", "2016-10-20T00:00:00Z", {**QUALIFIED, "rep_id": "r-frase"}),
         ("opportunity.lost", "2017-03-01T00:00:00Z", {**OPP, "rep_id": "r-frase"})],
        id="rep ids come from a replaceable function; lost needs no value",
    ),
]


@pytest.mark.parametrize(("line", "mapping", "expected"), RULE_CASES)
def test_rules(line: str, mapping: ColumnMapping | None,
               expected: list[tuple[str, str, dict[str, Any]]]) -> None:
    result = run(line, mapping=mapping)
    assert result.skipped == []
    assert brief(result) == expected


def test_envelope_shape() -> None:
    result = run("OPP1,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,1054")
    for event in result.events:
        assert set(event) == {"event_id", "type", "occurred_at", "source", "schema_version",
                              "data"}
        assert event["source"] == "csv-replay" and event["schema_version"] == 1
        assert 1 <= len(event["event_id"]) <= 128
        assert datetime.fromisoformat(event["occurred_at"]).utcoffset() is not None


# --- skipped rows ------------------------------------------------------------------------

SKIP_CASES = [
    pytest.param("OPP1,Moses Frase,GTX Basic,,Prospecting,,,", "no_date",
                 id="no_date: prospecting"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,,,100", "no_date", id="no_date: won"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Engaging,,2017-01-01,", "no_date",
                 id="no_date: engaging with only a forecast close"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2016-13-45,2017-03-01,100", "bad_date",
                 id="bad_date: engage"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Lost,2016-10-20,03/01/2017,0", "bad_date",
                 id="bad_date: close in another format"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2016-10-20,2017-03-01,", "bad_amount",
                 id="bad_amount: empty"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2016-10-20,2017-03-01,abc", "bad_amount",
                 id="bad_amount: not a number"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2016-10-20,2017-03-01,$1054", "bad_amount",
                 id="bad_amount: currency sign"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2016-10-20,2017-03-01,-5", "bad_amount",
                 id="bad_amount: negative"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2016-10-20,2017-03-01,NaN", "bad_amount",
                 id="bad_amount: NaN"),
    pytest.param("OPP1,,GTX Basic,,Won,2016-10-20,2017-03-01,100", "missing_agent",
                 id="missing_agent: empty"),
    pytest.param("OPP1,???,GTX Basic,,Won,2016-10-20,2017-03-01,100", "missing_agent",
                 id="missing_agent: nothing to make an id from"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Won,2017-03-02,2017-03-01,100",
                 "close_before_engage", id="close_before_engage"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Lost,2016-10-20,,0", "no_close_date",
                 id="no_close_date"),
    pytest.param("OPP1,Moses Frase,GTX Basic,,Stalled,2016-10-20,,", "unknown_stage",
                 id="unknown_stage"),
    pytest.param(",Moses Frase,GTX Basic,,Won,2016-10-20,2017-03-01,100", "missing_id",
                 id="missing_id"),
]


@pytest.mark.parametrize(("line", "reason"), SKIP_CASES)
def test_skip_reasons(line: str, reason: str) -> None:
    result = run(line)
    assert result.events == []
    assert [(s.row, s.reason) for s in result.skipped] == [(1, reason)]
    expected_id = line.split(",", 1)[0].strip() or None
    assert result.skipped[0].opportunity_id == expected_id
    assert result.counts["skipped"] == 1 and result.counts["rows"] == 1


def test_duplicate_id_keeps_the_first_row_only() -> None:
    result = run("OPP1,Moses Frase,,,Lost,2016-10-20,2017-03-01,0",
                 "OPP1,Moses Frase,,,Won,2016-10-20,2017-03-01,100")
    assert [e["type"] for e in result.events][-1] == "opportunity.lost"
    assert [(s.row, s.reason) for s in result.skipped] == [(2, "duplicate_id")]


def test_skips_do_not_stop_the_rest() -> None:
    result = run("A,Moses Frase,,,Prospecting,,,",
                 "B,Moses Frase,,,Won,2016-10-20,2017-03-01,100",
                 "C,,,,Won,2016-10-20,2017-03-01,100")
    assert result.counts == {"created": 1, "stage_changed": 1, "won": 1, "lost": 0, "rows": 3,
                             "skipped": 2, "unknown_product": 0}
    assert result.skipped_by_reason() == {"no_date": 1, "missing_agent": 1}


# --- ordering and ids --------------------------------------------------------------------


def test_same_instant_keeps_lifecycle_order() -> None:
    # Z closes the same day it engaged; A and Z share that day.
    result = run("Z,Moses Frase,,,Won,2017-01-01,2017-01-01,5",
                 "A,Anna Snelling,,,Lost,2017-01-01,2017-01-01,0",
                 "M,Anna Snelling,,,Engaging,2016-12-31,,")
    order = [(e["data"]["opportunity_id"], e["type"].split(".")[1]) for e in result.events]
    assert order == [("M", "created"), ("M", "stage_changed"),
                     ("A", "created"), ("Z", "created"),
                     ("A", "stage_changed"), ("Z", "stage_changed"),
                     ("A", "lost"), ("Z", "won")]


def test_sorted_by_instant_across_time_zones() -> None:
    mapping = ColumnMapping(date_formats=("%Y-%m-%dT%H:%M%z",))
    result = run("A,Moses Frase,,,Engaging,2017-01-01T09:00+0200,,",
                 "B,Moses Frase,,,Engaging,2017-01-01T08:00+0000,,", mapping=mapping)
    assert [e["data"]["opportunity_id"] for e in result.events[::2]] == ["A", "B"]


def test_event_ids_are_deterministic_and_distinct() -> None:
    lines = ("A,Moses Frase,,,Won,2016-10-20,2017-03-01,100",
             "B,Moses Frase,,,Lost,2016-10-20,2017-03-01,0")
    first, second = run(*lines), run(*reversed(lines))
    assert [e["event_id"] for e in first.events] == [e["event_id"] for e in second.events]
    ids = [e["event_id"] for e in first.events]
    assert len(set(ids)) == len(ids)
    prefixed = run(*lines, mapping=ColumnMapping(id_prefix="x-"))
    assert not set(ids) & {e["event_id"] for e in prefixed.events}


# --- products ----------------------------------------------------------------------------

CATALOGUE = {"GTX Pro": Decimal("4821"), "MG Special": Decimal("55"), "GTK 500": None}


@pytest.mark.parametrize(("raw", "mapping", "product", "amount", "unknown"), [
    ("GTXPro", ColumnMapping(product_catalogue=CATALOGUE), "GTX Pro", "4821", 0),
    ("gtx-pro", ColumnMapping(product_catalogue=CATALOGUE), "GTX Pro", "4821", 0),
    ("GTK 500", ColumnMapping(product_catalogue=CATALOGUE), "GTK 500", None, 0),
    ("Widget", ColumnMapping(product_catalogue=CATALOGUE), "Widget", None, 1),
    ("MGS", ColumnMapping(product_catalogue=CATALOGUE, product_aliases={"MGS": "MG Special"}),
     "MG Special", "55", 0),
    ("GTXPro", ColumnMapping(), "GTXPro", None, 0),
])
def test_products(raw: str, mapping: ColumnMapping, product: str, amount: str | None,
                  unknown: int) -> None:
    result = run(f"OPP1,Moses Frase,{raw},,Engaging,2016-10-20,,", mapping=mapping)
    created = result.events[0]["data"]
    assert created["product"] == product
    assert created.get("amount") == amount
    assert ("currency" in created) == (amount is not None)
    assert result.counts["unknown_product"] == unknown


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize("mapping", [
    ColumnMapping(stage_map={"Engaging": "engaging"}),
    ColumnMapping(created_stage="lead"),
    ColumnMapping(engaged_stage="won"),
    ColumnMapping(created_stage="meeting", engaged_stage="qualified"),
    ColumnMapping(timezone="Mars/Olympus"),
])
def test_bad_mapping_is_refused(mapping: ColumnMapping) -> None:
    with pytest.raises(ValueError):
        convert([], mapping, stages=STAGES)


@pytest.mark.parametrize(("name", "slug"), [
    ("Moses Frase", "moses-frase"),
    ("Mei-Mei Johns", "mei-mei-johns"),
    ("  José  Núñez ", "jose-nunez"),
    ("O'Brien, Pat", "o-brien-pat"),
    ("Zoë_Smith", "zoe-smith"),
    ("Ангела Мер", "ангела-мер"),
    ("!!!", ""),
])
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


# --- reading CSV files -------------------------------------------------------------------


def test_read_csv_handles_bom_crlf_quotes_and_blank_lines(tmp_path: Path) -> None:
    text = "\ufeffa, b\r\n1,\"x, \"\"y\"\"\"\r\n\r\n2,\"two\r\nlines\"\r\n3,z\r\n"
    rows = list(read_csv(write(tmp_path, text), required=("a", "b")))
    assert rows == [{"a": "1", "b": 'x, "y"'}, {"a": "2", "b": "two\r\nlines"},
                    {"a": "3", "b": "z"}]
    assert [row.line for row in rows] == [2, 4, 6]


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("", 1, "empty"),
    (",\n", 1, "header row is empty"),
    ("a,,b\n1,2,3\n", 1, "column 2 has no name"),
    ("a,b,a\n1,2,3\n", 1, "repeats column(s): a"),
    ("a,c\n1,2\n", 1, "missing required column(s): b"),
    ("a,b\n1,2\n3,4,5\n", 3, "3 fields, header has 2"),
    ("a,b\n1,2\n\n3\n", 4, "1 fields, header has 2"),
    ('a,b\n1,"2"x\n', 2, "malformed CSV"),
])
def test_read_csv_errors_name_file_line_and_reason(tmp_path: Path, text: str, line: int,
                                                   reason: str) -> None:
    path = write(tmp_path, text, "broken.csv")
    with pytest.raises(CsvFormatError) as caught:
        list(read_csv(path, required=("a", "b")))
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_read_csv_rejects_non_utf8_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b\n1,2\nJos\xe9,3\n".encode("latin-1"))
    with pytest.raises(CsvFormatError, match="not UTF-8"):
        list(read_csv(path))
    with pytest.raises(CsvFormatError, match="cannot open"):
        list(read_csv(tmp_path / "absent.csv"))


def test_replay_file_requires_every_mapped_column(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER.replace(",close_value", "") + "\n")
    with pytest.raises(CsvFormatError, match="close_value"):
        replay_file(path, ColumnMapping(), stages=STAGES)
    assert replay_file(path, ColumnMapping(close_value=None), stages=STAGES).counts["rows"] == 0


def test_skipped_rows_carry_the_file_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + '\nA,"Moses\nFrase",,,Engaging,2016-10-20,,\nB,,,,Won,,,\n')
    result = replay_file(path, ColumnMapping(), stages=STAGES)
    assert [(s.row, s.line, s.reason) for s in result.skipped] == [(2, 4, "missing_agent")]


# --- rep directory and product catalogue ------------------------------------------------

TEAMS = ("sales_agent,manager,regional_office\n"
         "Moses Frase,Dustin Brinkmann,Central\n"
         "Violet Mclelland,Cara Losch,East\n"
         "Moses Frase,Dustin Brinkmann,Central\n")


def test_rep_directory(tmp_path: Path) -> None:
    events = load_rep_directory(write(tmp_path, TEAMS))
    assert [e["data"] for e in events] == [
        {"rep_id": "moses-frase", "team_id": "dustin-brinkmann", "region_id": "central",
         "name": "Moses Frase", "manager": "Dustin Brinkmann"},
        {"rep_id": "violet-mclelland", "team_id": "cara-losch", "region_id": "east",
         "name": "Violet Mclelland", "manager": "Cara Losch"},
    ]
    assert {e["type"] for e in events} == {"rep.upserted"}
    assert events == load_rep_directory(write(tmp_path, TEAMS, "again.csv"))


def test_rep_directory_options(tmp_path: Path) -> None:
    text = "agent;boss;office\n"  # not comma-separated: one column named as a whole
    with pytest.raises(CsvFormatError, match="missing required"):
        load_rep_directory(write(tmp_path, text))
    path = write(tmp_path, "agent,boss,office\nMoses Frase,Dustin Brinkmann,Central\n")
    as_of = datetime.fromisoformat("2017-01-01T00:00:00+00:00")
    [event] = load_rep_directory(path, agent_column="agent", manager_column="boss",
                                 region_column="office", team_id_of=lambda m: "t-" + slugify(m),
                                 as_of=as_of)
    assert event["data"]["team_id"] == "t-dustin-brinkmann"
    assert event["occurred_at"] == "2017-01-01T00:00:00Z"


def test_rep_id_of_a_moved_rep_differs(tmp_path: Path) -> None:
    [before] = load_rep_directory(write(tmp_path, TEAMS.splitlines()[0] + "\nA B,M,East\n"))
    [after] = load_rep_directory(write(tmp_path, TEAMS.splitlines()[0] + "\nA B,M,West\n", "b"))
    assert before["event_id"] != after["event_id"]


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("Moses Frase,,Central\n", 2, "empty manager"),
    ("Moses Frase,A,Central\nMoses Frase,B,Central\n", 3, "already mapped differently on line 2"),
    ("Moses Frase,A,Central\nmoses  frase,A,Central\n", 3, "already mapped differently"),
])
def test_rep_directory_errors(tmp_path: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        load_rep_directory(write(tmp_path, "sales_agent,manager,regional_office\n" + text))
    assert caught.value.line == line and reason in caught.value.reason


def test_product_catalogue(tmp_path: Path) -> None:
    path = write(tmp_path, "product,series,sales_price\nGTX Pro,GTX,4821\nGTK 500,GTK,\n")
    assert load_product_catalogue(path) == {"GTX Pro": Decimal("4821"), "GTK 500": None}
    assert load_product_catalogue(path, price_column=None) == {"GTX Pro": None, "GTK 500": None}
    with pytest.raises(CsvFormatError, match=r":2: bad sales_price"):
        load_product_catalogue(write(tmp_path, "product,sales_price\nX,cheap\n", "bad.csv"))


# --- the real export ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def maven() -> Path:
    """The real export, shipped with the project in examples/ (where it comes from: SOURCE.md)."""
    folder = Path(__file__).resolve().parents[3] / "examples" / "crm-sales-opportunities"
    assert (folder / "sales_pipeline.csv").is_file(), f"sample export missing in {folder}"
    return folder


@pytest.fixture(scope="module")
def raw_rows(maven: Path) -> list[dict[str, str]]:
    # Read with nothing but the csv module, so the expectations do not share our reader.
    with (maven / "sales_pipeline.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def replayed(maven: Path) -> ReplayResult:
    mapping = ColumnMapping(product_catalogue=load_product_catalogue(maven / "products.csv"))
    return replay_file(maven / "sales_pipeline.csv", mapping, stages=STAGES)


def test_real_file_counts_match_an_independent_count(
    raw_rows: list[dict[str, str]], replayed: ReplayResult
) -> None:
    won = [r for r in raw_rows if r["deal_stage"] == "Won"]
    lost = [r for r in raw_rows if r["deal_stage"] == "Lost"]
    dateless = [r for r in raw_rows if not r["engage_date"] and not r["close_date"]]
    dated = len(raw_rows) - len(dateless)
    assert replayed.counts == {"created": dated, "stage_changed": dated, "won": len(won),
                               "lost": len(lost), "rows": len(raw_rows),
                               "skipped": len(dateless), "unknown_product": 0}
    assert replayed.skipped_by_reason() == {"no_date": len(dateless)}
    assert {s.opportunity_id for s in replayed.skipped} == {r["opportunity_id"] for r in dateless}


def test_real_file_matches_the_published_figures(replayed: ReplayResult) -> None:
    won = [e for e in replayed.events if e["type"] == "opportunity.won"]
    lost = [e for e in replayed.events if e["type"] == "opportunity.lost"]
    assert (len(won), len(lost), replayed.counts["skipped"]) == (4238, 2473, 500)
    assert sum(Decimal(e["data"]["amount"]) for e in won) == Decimal("10005534")
    assert {e["data"]["currency"] for e in won} == {"USD"}
    assert round(100 * len(won) / (len(won) + len(lost)), 2) == 63.15


def test_real_file_engage_to_win_is_about_52_days(replayed: ReplayResult) -> None:
    created = {e["data"]["opportunity_id"]: datetime.fromisoformat(e["occurred_at"])
               for e in replayed.events if e["type"] == "opportunity.created"}
    days = [(datetime.fromisoformat(e["occurred_at"]) - created[e["data"]["opportunity_id"]])
            .total_seconds() / 86400
            for e in replayed.events if e["type"] == "opportunity.won"]
    assert round(mean(days)) == 52
    assert mean(days) == pytest.approx(51.78, abs=0.01)


def test_real_file_events_are_in_time_and_lifecycle_order(replayed: ReplayResult) -> None:
    times = [datetime.fromisoformat(e["occurred_at"]) for e in replayed.events]
    assert times == sorted(times)
    assert date(2016, 10, 20) <= times[0].date() and times[-1].date() <= date(2017, 12, 31)
    created: set[str] = set()
    for event in replayed.events:
        opportunity = event["data"]["opportunity_id"]
        if event["type"] == "opportunity.created":
            created.add(opportunity)
        else:
            assert opportunity in created, event


def test_real_file_replay_is_deterministic(maven: Path, replayed: ReplayResult) -> None:
    mapping = ColumnMapping(product_catalogue=load_product_catalogue(maven / "products.csv"))
    again = replay_file(maven / "sales_pipeline.csv", mapping, stages=STAGES)
    assert again.events == replayed.events
    ids = [e["event_id"] for e in replayed.events]
    assert len(set(ids)) == len(ids)


def test_real_file_products_resolve_to_the_catalogue(
    maven: Path, raw_rows: list[dict[str, str]], replayed: ReplayResult
) -> None:
    catalogue = load_product_catalogue(maven / "products.csv")
    assert "GTXPro" in {r["product"] for r in raw_rows}  # the known misspelling is there
    products = {e["data"]["product"] for e in replayed.events
                if e["type"] == "opportunity.created"}
    assert products == set(catalogue)


def test_real_rep_directory_maps_every_active_agent(
    maven: Path, raw_rows: list[dict[str, str]], replayed: ReplayResult
) -> None:
    reps = load_rep_directory(maven / "sales_teams.csv")
    directory = {e["data"]["rep_id"]: e["data"] for e in reps}
    active = {r["sales_agent"] for r in raw_rows}
    assert len(active) == 30
    assert {slugify(agent) for agent in active} <= set(directory)
    assert {e["data"]["rep_id"] for e in replayed.events} <= set(directory)
    assert len(directory) == 35  # five listed agents never had an opportunity
    assert {d["region_id"] for d in directory.values()} == {"central", "east", "west"}
    assert len({d["team_id"] for d in directory.values()}) == 6
