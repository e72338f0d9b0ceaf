"""What `/kpis` and `kpi-pipeline kpis` accept: KPI names, windows, scopes, dates; refusals list what exists."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date

from kpi_state.calendar import CALENDAR_WINDOWS
from kpi_state.catalogue import CATALOGUE
from kpi_state.rollup import WINDOWS

SCOPE_KINDS = ("rep", "team", "region")
SCOPE_SHAPES = "global, rep:ID, team:ID or region:ID"


class QueryError(ValueError):
    """A query parameter that names nothing the pipeline knows; the message lists what does."""

    def __init__(self, parameter: str, message: str, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.accepted = accepted


@dataclass(frozen=True)
class KpiQuery:
    scope: str | None = None
    window: str | None = None
    kpi: str | None = None
    start: date | None = None


def _hint(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def check_kpi(kpi: str) -> str:
    if kpi not in CATALOGUE:
        names = tuple(CATALOGUE)
        raise QueryError("kpi", f"unknown KPI {kpi!r}{_hint(kpi, names)}; KPIs: {', '.join(names)}", names)
    return kpi


def check_window(window: str) -> str:
    if window not in WINDOWS:
        raise QueryError(
            "window", f"unknown window {window!r}{_hint(window, WINDOWS)}; windows: {', '.join(WINDOWS)}",
            WINDOWS,
        )
    return window


def check_scope(scope: str) -> str:
    kind, sep, ident = scope.partition(":")
    if scope == "global" or (kind in SCOPE_KINDS and sep and ident.strip() == ident and ident):
        return scope
    shapes = ("global", *(f"{k}:ID" for k in SCOPE_KINDS))
    if kind in SCOPE_KINDS and sep:
        raise QueryError("scope", f"scope {scope!r} needs an id without spaces, e.g. {kind}:x-01", shapes)
    hint = _hint(scope, ("global",)) if not sep else _hint(kind, SCOPE_KINDS)
    raise QueryError("scope", f"unknown scope {scope!r}{hint}; scopes are {SCOPE_SHAPES}", shapes)


def check_start(start: str) -> date:
    try:
        return date.fromisoformat(start[:10])
    except ValueError:
        raise QueryError("start", f"start {start!r} is not a date; give one such as 2026-11-01") from None


def parse_query(params: dict[str, str]) -> KpiQuery:
    """The accepted parameters of /kpis; empty values mean 'any'; unknown names are refused."""
    unknown = sorted(set(params) - {"scope", "window", "kpi", "start"})
    if unknown:
        raise QueryError(
            unknown[0], f"unknown parameter {unknown[0]!r}; parameters: scope, window, kpi, start",
            ("scope", "window", "kpi", "start"),
        )
    scope, window = params.get("scope") or None, params.get("window") or None
    kpi, start = params.get("kpi") or None, params.get("start") or None
    if start and window and window in WINDOWS and window not in CALENDAR_WINDOWS:
        # A rolling window or `all` has one record, the current one: no start picks another.
        raise QueryError(
            "start", f"start picks a calendar window ({', '.join(CALENDAR_WINDOWS)}); "
            f"{window} has only its current record: leave start out", CALENDAR_WINDOWS,
        )
    return KpiQuery(
        scope=check_scope(scope) if scope else None,
        window=check_window(window) if window else None,
        kpi=check_kpi(kpi) if kpi else None,
        start=check_start(start) if start else None,
    )
