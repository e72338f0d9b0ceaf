"""The `kpi-pipeline` command: worker, simulate, replay, kpis, top, demo, bench."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.text import Text

from agents.thresholds_command import refuse_bad_file as refuse_bad_thresholds
from streams.settings import Settings, describe_settings_error

cli = typer.Typer(
    help="Streaming sales-KPI pipeline. Settings come from flags and KPI_* environment variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2, *, headline: str | None = None) -> NoReturn:
    """Print `message` as plain text (it may hold brackets, URLs, user input) and exit."""
    text = Text()
    if headline:
        text.append(headline, style="bold red")
        if not headline.endswith("\n"):
            text.append(" ")
    text.append(message)
    err_console.print(text, soft_wrap=True)
    raise typer.Exit(code)


def quiet_kafka_client(quiet: bool = True) -> None:
    """Short-lived commands report connection problems themselves, once."""
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if quiet else logging.NOTSET)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, flags winning; a bad one exits with its name."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except (ValidationError, SettingsError) as exc:
        fail(describe_settings_error(exc), headline="invalid settings:\n")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"kpi-pipeline {version('kpi-pipeline')}", highlight=False)
        except PackageNotFoundError:
            console.print("kpi-pipeline (not installed)")
        raise typer.Exit(0)


@cli.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Streaming sales-KPI pipeline. Settings come from flags and KPI_* environment variables."""


BrokerOpt = typer.Option(None, "--broker", help="kafka://HOST:PORT (env KPI_BROKER_URL)")
RedisOpt = typer.Option(None, "--redis", help="redis://HOST:PORT/DB (env KPI_REDIS_URL)")


@cli.command()
def worker(
    broker: Optional[str] = BrokerOpt,
    redis: Optional[str] = RedisOpt,
    web_port: Optional[int] = typer.Option(None, "--web-port", help="HTTP port (env KPI_WEB_PORT)"),
    reps_file: Optional[Path] = typer.Option(
        None, "--reps-file", help="CSV with rep_id,team_id,region_id (env KPI_REPS_FILE)"
    ),
    loglevel: str = typer.Option("info", "--loglevel"),
) -> None:
    """Run one Faust worker (several form a consumer group)."""
    settings = load_settings(
        broker_url=broker, redis_url=redis, web_port=web_port, reps_file=reps_file
    )
    run_worker(settings, loglevel)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    import gc

    import faust

    from agents.app import create_app
    from streams.reps import RepsFileError
    from streams.topics import TopicLayoutError, ensure_topics

    from agents.health import GuardedWorker, port_problem

    busy = port_problem(settings.web_host, settings.web_port)
    if busy:
        fail(f"{busy}. Another worker may run here: give this one another port with "
             "KPI_WEB_PORT or --web-port (e.g. --web-port 6067).", headline="web port unavailable:")
    quiet_kafka_client()
    refuse_bad_thresholds(settings.thresholds_file)
    try:
        partitions = asyncio.run(asyncio.wait_for(ensure_topics(settings), 30))
    except TopicLayoutError as exc:
        fail(str(exc), headline="topics cannot be used:")
    except Exception as exc:  # noqa: BLE001 - turn any connection failure into advice
        fail(f"({type(exc).__name__}).\nStart Kafka there, point KPI_BROKER_URL at yours, "
             "or try `kpi-pipeline demo`.", 1,
             headline=f"cannot reach the broker at {settings.broker_url}")
    quiet_kafka_client(False)
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        app, _ = create_app(settings, input_partitions=partitions)
    except RepsFileError as exc:
        fail(str(exc), headline="reps file refused:")
    # The objects made so far (modules, the app) live as long as the worker: frozen, the
    # collector stops scanning them. The steps allocate and free records by the thousand a
    # batch; collecting every 700 allocations (Python's default) costs more than it frees.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    GuardedWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


@cli.command()
def simulate(
    rate: float = typer.Option(200.0, "--rate", min=1, help="events per second (wall clock)"),
    duration: Optional[float] = typer.Option(None, "--duration", min=0, help="stop after S seconds"),
    seed: int = typer.Option(7, "--seed"),
    scenario: str = typer.Option("steady", "--scenario"),
    bad_ratio: float = typer.Option(0.0, "--bad-ratio", min=0, max=1),
    count: Optional[int] = typer.Option(None, "--count", min=1, help="stop after N events"),
    live_activity: float = typer.Option(
        1.0, "--live-activity", min=1, help="once caught up with the clock, N times the usual activity"
    ),
    broker: Optional[str] = BrokerOpt,
) -> None:
    """Produce realistic CRM and billing events."""
    from streams.simulate_run import run_simulation
    from streams.simulator import SCENARIOS

    if scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    settings = load_settings(broker_url=broker)
    quiet_kafka_client()
    try:
        sent = asyncio.run(
            run_simulation(
                settings, rate=rate, duration=duration, seed=seed, scenario=scenario,
                bad_ratio=bad_ratio, count=count, live_activity=live_activity,
            )
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - connection problems become advice
        fail(f"({type(exc).__name__}); start Kafka there or point KPI_BROKER_URL/--broker at yours",
             1, headline=f"cannot send to the broker at {settings.broker_url}")
    console.print(f"sent {sent} events")


@cli.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the export to replay"),
    fmt: str = typer.Option(..., "--format", help="opportunities-csv or jsonl"),
    reps: Optional[Path] = typer.Option(
        None, "--reps", exists=True, dir_okay=False,
        help="rep → manager (team) → office (region) CSV, e.g. sales_teams.csv",
    ),
    products: Optional[Path] = typer.Option(
        None, "--products", exists=True, dir_okay=False,
        help="product catalogue CSV (product,sales_price): canonical names, expected amounts",
    ),
    currency: str = typer.Option("USD", "--currency", help="currency of the export's amounts"),
    timezone: str = typer.Option("UTC", "--timezone", help="time zone of the export's dates"),
    id_prefix: str = typer.Option("", "--id-prefix", help="prefix for opportunity/account ids"),
    stage_map: Optional[str] = typer.Option(
        None, "--stage-map",
        help="file stage=pipeline stage pairs, e.g. 'Prospecting=prospecting,Engaging=qualified,Won=won,Lost=lost'",
    ),
    date_format: list[str] = typer.Option(["%Y-%m-%d"], "--date-format", help="strptime format(s)"),
    col: list[str] = typer.Option(
        [], "--col",
        help="column mapping FIELD=COLUMN; fields: opportunity_id, sales_agent, deal_stage, product, "
        "account, engage_date, close_date, close_value (COLUMN '-' = absent)",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="convert and report, send nothing"),
    to: str = typer.Option(
        "backfill", "--to",
        help="backfill: the history topic (own stream time, the default); live: crm.events and billing.events",
    ),
    skipped_report: Optional[Path] = typer.Option(
        None, "--skipped-report", help="write the skipped rows (row, id, reason) to this CSV"
    ),
    broker: Optional[str] = BrokerOpt,
) -> None:
    """Turn a CRM or billing export into events in event-time order and produce them."""
    from agents.replay_command import run_replay

    settings = load_settings(broker_url=broker)
    quiet_kafka_client()
    code = run_replay(
        settings, file, fmt=fmt, reps=reps, products=products, currency=currency,
        timezone=timezone, id_prefix=id_prefix, stage_map=stage_map, date_formats=date_format,
        columns=col, dry_run=dry_run, skipped_report=skipped_report,
        console=console, err_console=err_console, to=to,
    )
    raise typer.Exit(code)


@cli.command()
def dashboards(
    out: Path = typer.Option(Path("deploy/grafana/dashboards"), "--out", help="directory of the JSON files"),
    thresholds: Optional[Path] = typer.Option(
        None, "--thresholds", help="thresholds file for the colours (env KPI_THRESHOLDS_FILE; default: shipped)"
    ),
    currency: Optional[str] = typer.Option(None, "--currency", help="reporting currency (env KPI_REPORTING_CURRENCY)"),
) -> None:
    """Write the Grafana boards (rep, director, executive, quality) as JSON files."""
    from agents.dashboards_command import run_dashboards

    currency = currency or load_settings().reporting_currency
    raise typer.Exit(run_dashboards(out, thresholds, currency, console, err_console))


@cli.command()
def kpis(
    scope: str = typer.Option("global", "--scope", help="e.g. rep:r-01, team:t-emea-1, region:emea, global"),
    window: Optional[str] = typer.Option(None, "--window", help="day, week, month, quarter, year, 7d, 30d, 90d, all"),
    kpi: Optional[str] = typer.Option(None, "--kpi", help="one KPI name, e.g. win_rate"),
    url: str = typer.Option("http://127.0.0.1:6066", "--url", help="a worker's web address"),
    as_json: bool = typer.Option(False, "--json", help="print JSON records"),
) -> None:
    """Print current KPI values of one scope from a running worker."""
    from agents.kpi_query import QueryError, check_kpi, check_scope, check_window
    from exporters.board import scope_table

    try:
        check_scope(scope)
        if window:
            check_window(window)
        if kpi:
            check_kpi(kpi)
    except QueryError as exc:
        fail(str(exc))
    url = check_url(url)
    records = fetch_kpis(url, scope=scope, window=window, kpi=kpi)
    if records is None:
        fail(f"no worker answers at {url}; start one with `kpi-pipeline worker`, or give --url.", 1)
    if as_json:
        console.print_json(json.dumps(records))
    elif not records:
        console.print(Text(f"no KPI values for scope {scope!r} yet"))
    else:
        console.print(scope_table(records, title=f"KPIs of {scope}", width=console.width))


@cli.command()
def top(
    role: str = typer.Option("director", "--role", help="rep, director, executive or quality"),
    scope: Optional[str] = typer.Option(
        None, "--scope", help="rows of one kind (rep, team, region, global) or one scope (team:t-emea-1)"
    ),
    window: Optional[str] = typer.Option(None, "--window", help="day, week, month, quarter, year, 7d, 30d, 90d, all"),
    url: str = typer.Option("http://127.0.0.1:6066", "--url", help="a worker's web address"),
    interval: float = typer.Option(2.0, "--interval", min=0.2, help="seconds between refreshes"),
) -> None:
    """Live terminal board of one role, green/amber/red."""
    from agents.kpi_query import SCOPE_KINDS, QueryError, check_scope, check_window
    from agents.top import watch_board
    from exporters.board import ROLE_NAMES

    if role not in ROLE_NAMES:
        fail(f"unknown role {role!r}; roles: {', '.join(ROLE_NAMES)}")
    try:
        if window:
            check_window(window)
        if scope and scope not in (*SCOPE_KINDS, "global"):
            check_scope(scope)
    except QueryError as exc:
        fail(str(exc))
    raise typer.Exit(watch_board(check_url(url), console=console, role=role, window=window,
                                 scope=scope, interval=interval))


def check_url(url: str) -> str:
    """A worker's base URL; refused (exit 2) when it has no http(s) scheme or host."""
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"--url {url!r} is not a web address; write it with its scheme, e.g. http://{url.split('://')[-1] or '127.0.0.1:6066'}")
    return url.rstrip("/")


def fetch_kpis(url: str, **params: Optional[str]) -> list[dict[str, Any]] | None:
    """Records from a worker's /kpis; None when nothing answers; a 400 exits with its message."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/kpis?{query}", timeout=3) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            try:
                fail(json.loads(exc.read())["error"])
            except (ValueError, KeyError):
                pass
        return None
    except (OSError, ValueError):
        return None


@cli.command()
def demo(
    duration: Optional[float] = typer.Option(None, "--duration", min=1, help="stop after S seconds"),
    rate: float = typer.Option(500.0, "--rate", min=1, help="simulated events per second while catching up"),
    seed: int = typer.Option(7, "--seed"),
    scenario: str = typer.Option("steady", "--scenario"),
    role: str = typer.Option("director", "--role", help="the board shown: rep, director, executive, quality"),
) -> None:
    """Embedded broker and Redis (unless configured), simulator, worker and the live board."""
    from agents.demo import run_demo

    from agents.embedded import EmbeddedServerError
    from streams.simulator import SCENARIOS

    if scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    from exporters.board import ROLE_NAMES

    if role not in ROLE_NAMES:
        fail(f"unknown role {role!r}; roles: {', '.join(ROLE_NAMES)}")
    load_settings()  # a bad KPI_* variable is reported here, not in the worker's log
    try:
        code = run_demo(duration=duration, rate=rate, seed=seed, scenario=scenario, console=console,
                        role=role)
    except EmbeddedServerError as exc:
        fail(str(exc), 1, headline="the demo cannot start:")
    raise typer.Exit(code)


@cli.command()
def bench(
    events: int = typer.Option(400_000, "--events", min=1, help="events in the backlog (the default keeps (b) running over 20 s)"),
    reps: int = typer.Option(500, "--reps", min=1, help="reps of the simulated organisation"),
    seed: int = typer.Option(7, "--seed"),
    only: Optional[str] = typer.Option(None, "--only", help="measurements to run, e.g. a,b (all: a,b,c,d,e,f)"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="where to write the JSON (default: DATA_DIR/bench.json)"),
    latency_rate: Optional[float] = typer.Option(
        None, "--latency-rate", min=1, help="events/s offered in (c) (default: half of (b)'s rate)"),
) -> None:
    """The benchmark: baseline consumer, full pipeline, latency, memory, scale (issue 11)."""
    from agents.bench.runner import BenchOptions, parse_only, run_bench

    load_settings()  # a bad KPI_* variable is reported here, not in a worker's log
    try:
        stages = parse_only(only)
    except ValueError as exc:
        fail(str(exc))
    quiet_kafka_client()
    options = BenchOptions(events=events, reps=reps, seed=seed, only=stages, json_path=json_path,
                           latency_rate=latency_rate)
    raise typer.Exit(run_bench(options, console))


from agents.thresholds_command import register as _register_thresholds  # noqa: E402

_register_thresholds(cli)  # `thresholds check FILE` and `rules FILE`


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
