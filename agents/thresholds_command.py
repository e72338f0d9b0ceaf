"""`kpi-pipeline thresholds check FILE` and `kpi-pipeline rules FILE`: the thresholds file from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from kpi_state.thresholds import Thresholds, ThresholdsError, default_thresholds, load_thresholds

console = Console()
err_console = Console(stderr=True, highlight=False)
thresholds_cli = typer.Typer(help="Check a thresholds file (KPI_THRESHOLDS_FILE).", no_args_is_help=True)


def read_thresholds(path: Path | None) -> Thresholds:
    """The file at `path`, or the shipped default; ThresholdsError (with lines) when bad."""
    if path is None:
        return default_thresholds()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ThresholdsError(str(path), [(0, f"cannot read the file ({type(exc).__name__})")]) from None
    return load_thresholds(text, str(path))


@thresholds_cli.command("check")
def check(file: Path = typer.Argument(..., help="the thresholds YAML file")) -> None:
    """Validate a thresholds file: every problem with its line; exit 1 when there is any."""
    try:
        read_thresholds(file)
    except ThresholdsError as exc:
        for line in exc.lines():
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    console.print(f"{file}: ok")


def rules(
    file: Optional[Path] = typer.Argument(None, help="the thresholds YAML file (default: the shipped one)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write here instead of stdout"),
) -> None:
    """Write Prometheus alerting rules equivalent to a thresholds file."""
    from exporters.prometheus_rules import rules_yaml

    try:
        thresholds = read_thresholds(file)
    except ThresholdsError as exc:
        for line in exc.lines():
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    text = rules_yaml(thresholds)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def register(cli: typer.Typer) -> None:
    cli.add_typer(thresholds_cli, name="thresholds")
    cli.command("rules")(rules)


def refuse_bad_file(path: Path | None) -> Thresholds:
    """For the worker's start: the thresholds, or exit 2 naming the file's bad lines."""
    try:
        return read_thresholds(path)
    except ThresholdsError as exc:
        err_console.print("[bold red]thresholds file refused[/] (KPI_THRESHOLDS_FILE):")
        for line in exc.lines():
            typer.echo("  " + line, err=True)
        raise typer.Exit(2) from None
