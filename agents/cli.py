"""The `kpi-pipeline` command: worker, simulate, demo, kpis."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from agents.thresholds_command import refuse_bad_file as refuse_bad_thresholds
from streams.settings import Settings, describe_settings_error

cli = typer.Typer(
    help="Streaming sales-KPI pipeline. Settings come from flags and KPI_* environment variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, flags winning; a bad one exits with its name."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err_console.print("[bold red]invalid settings:[/]\n" + describe_settings_error(exc))
        raise typer.Exit(2) from None


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
    import faust

    from agents.app import create_app
    from streams.reps import RepsFileError
    from streams.topics import TopicLayoutError, ensure_topics

    refuse_bad_thresholds(settings.thresholds_file)
    try:
        partitions = asyncio.run(asyncio.wait_for(ensure_topics(settings), 30))
    except TopicLayoutError as exc:
        err_console.print(f"[bold red]topics cannot be used:[/] {exc}")
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - turn any connection failure into advice
        err_console.print(
            f"[bold red]cannot reach the broker at {settings.broker_url}[/] ({type(exc).__name__}).\n"
            "Start Kafka there, point KPI_BROKER_URL at yours, or try `kpi-pipeline demo`."
        )
        raise typer.Exit(1) from None
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        app, _ = create_app(settings, input_partitions=partitions)
    except RepsFileError as exc:
        err_console.print(f"[bold red]reps file refused[/]: {exc}")
        raise typer.Exit(2) from None
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


@cli.command()
def simulate(
    rate: float = typer.Option(200.0, "--rate", min=1, help="events per second (wall clock)"),
    duration: Optional[float] = typer.Option(None, "--duration", min=0, help="stop after S seconds"),
    seed: int = typer.Option(7, "--seed"),
    scenario: str = typer.Option("steady", "--scenario"),
    bad_ratio: float = typer.Option(0.0, "--bad-ratio", min=0, max=1),
    count: Optional[int] = typer.Option(None, "--count", min=1, help="stop after N events"),
    broker: Optional[str] = BrokerOpt,
) -> None:
    """Produce realistic CRM and billing events."""
    from streams.simulate_run import run_simulation
    from streams.simulator import SCENARIOS

    if scenario not in SCENARIOS:
        err_console.print(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    settings = load_settings(broker_url=broker)
    sent = asyncio.run(
        run_simulation(
            settings, rate=rate, duration=duration, seed=seed, scenario=scenario,
            bad_ratio=bad_ratio, count=count,
        )
    )
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
    skipped_report: Optional[Path] = typer.Option(
        None, "--skipped-report", help="write the skipped rows (row, id, reason) to this CSV"
    ),
    broker: Optional[str] = BrokerOpt,
) -> None:
    """Turn a CRM or billing export into events in event-time order and produce them."""
    from agents.replay_command import run_replay

    settings = load_settings(broker_url=broker)
    code = run_replay(
        settings, file, fmt=fmt, reps=reps, products=products, currency=currency,
        timezone=timezone, id_prefix=id_prefix, stage_map=stage_map, date_formats=date_format,
        columns=col, dry_run=dry_run, skipped_report=skipped_report,
        console=console, err_console=err_console,
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
    kpi: Optional[str] = typer.Option(None, "--kpi"),
    url: str = typer.Option("http://127.0.0.1:6066", "--url", help="a worker's web address"),
    as_json: bool = typer.Option(False, "--json", help="print JSON records"),
) -> None:
    """Print current KPI values of one scope from a running worker."""
    from exporters.board import scope_table

    records = fetch_kpis(url, scope=scope, window=window, kpi=kpi)
    if records is None:
        err_console.print(f"no worker answers at {url}; start one with `kpi-pipeline worker`.")
        raise typer.Exit(1)
    if as_json:
        console.print_json(json.dumps(records))
    elif not records:
        console.print(f"no KPI values for scope {scope!r} yet")
    else:
        console.print(scope_table(records, title=f"KPIs of {scope}"))


@cli.command()
def top(
    url: str = typer.Option("http://127.0.0.1:6066", "--url", help="a worker's web address"),
    interval: float = typer.Option(2.0, "--interval", min=0.2),
) -> None:
    """Live terminal board, green/amber/red."""
    from agents.demo import watch_board

    raise typer.Exit(watch_board(url, console=console, interval=interval))


def fetch_kpis(url: str, **params: Optional[str]) -> list[dict[str, Any]] | None:
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/kpis?{query}", timeout=3) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


@cli.command()
def demo(
    duration: Optional[float] = typer.Option(None, "--duration", min=1, help="stop after S seconds"),
    rate: float = typer.Option(300.0, "--rate", min=1, help="simulated events per second"),
    seed: int = typer.Option(7, "--seed"),
    scenario: str = typer.Option("steady", "--scenario"),
) -> None:
    """Embedded broker and Redis (unless configured), simulator, worker and the live board."""
    from agents.demo import run_demo

    code = run_demo(duration=duration, rate=rate, seed=seed, scenario=scenario, console=console)
    raise typer.Exit(code)


from agents.thresholds_command import register as _register_thresholds  # noqa: E402

_register_thresholds(cli)  # `thresholds check FILE` and `rules FILE`


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
