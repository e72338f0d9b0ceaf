"""The thresholds file's model: bounds, status, overrides by lineage, objectives, notifiers (parsing in thresholds_yaml)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

SEVERITIES = ("critical", "warning", "info")
DIRECTIONS = ("higher", "lower")
NOTIFIER_TYPES = ("webhook", "slack", "alertmanager")
STATUS_CODES = {"green": 0, "amber": 1, "red": 2, "unknown": -1}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SCOPE = re.compile(r"^(global|(rep|team|region):[^\s|]+)$")
# Fields an override may change; everything else is the KPI's own.
_OVERRIDABLE = ("red", "amber", "clear_margin", "min_sample", "pending", "severity")


class ThresholdsError(ValueError):
    """A file that cannot be used: `problems` holds (line, reason), line 1-based (0 = whole file)."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = sorted(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}:{line}: {reason}" for line, reason in self.problems]


@dataclass(frozen=True)
class Bounds:
    """The numbers that judge one KPI in one scope (after overrides)."""

    direction: str
    red: float
    amber: float | None
    clear_margin: float
    min_sample: float
    pending_s: float
    severity: str

    def status(self, value: float | None, sample: float | None) -> str:
        if value is None or (sample if sample is not None else value) < self.min_sample:
            return "unknown"
        if self.is_red(value):
            return "red"
        if self.amber is not None and (value < self.amber if self.direction == "higher" else value > self.amber):
            return "amber"
        return "green"

    def is_red(self, value: float) -> bool:
        return value < self.red if self.direction == "higher" else value > self.red

    def is_clear(self, value: float) -> bool:
        """Past the red bound by the margin: what resolving an alert takes (hysteresis)."""
        if self.direction == "higher":
            return value >= self.red + self.clear_margin
        return value <= self.red - self.clear_margin


@dataclass(frozen=True)
class Objective:
    scope: str
    window: str
    value: float


@dataclass(frozen=True)
class KpiRule:
    kpi: str
    windows: tuple[str, ...]
    bounds: Bounds | None  # None: objectives only, no status
    summary: str
    runbook: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    objectives: tuple[Objective, ...] = ()

    def bounds_for(self, lineage: tuple[str, ...]) -> Bounds | None:
        """Bounds for the first scope of `lineage` (most specific first) that has an override."""
        if self.bounds is None:
            return None
        for scope in lineage:
            changes = self.overrides.get(scope)
            if changes is not None:
                return replace(self.bounds, **changes)
        return self.bounds


@dataclass(frozen=True)
class Notifier:
    name: str
    type: str
    url: str
    allow_hosts: tuple[str, ...] = ()
    resend_interval_s: float = 60.0
    line: int = 0


@dataclass(frozen=True)
class Thresholds:
    kpis: dict[str, KpiRule]
    notifiers: tuple[Notifier, ...] = ()
    silent_after_s: float = 1800.0

    def rule(self, kpi: str) -> KpiRule | None:
        return self.kpis.get(kpi)

    def status(self, kpi: str, scope: str, window: str, value: float | None, sample: float | None,
               lineage: tuple[str, ...] | None = None) -> str:
        rule = self.kpis.get(kpi)
        if rule is None or window not in rule.windows:
            return "unknown"
        bounds = rule.bounds_for(lineage or lineage_of(scope))
        return "unknown" if bounds is None else bounds.status(value, sample)

    def objectives(self, scope: str, window: str) -> list[tuple[str, float]]:
        """(kpi, objective) pairs configured for exactly this scope and window kind."""
        return [(rule.kpi, o.value) for rule in self.kpis.values() for o in rule.objectives
                if o.scope == scope and o.window == window]


def lineage_of(scope: str) -> tuple[str, ...]:
    """Without a directory a scope only falls back to `global` overrides."""
    return (scope,) if scope == "global" else (scope, "global")


def parse_duration(text: Any) -> float | None:
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if text >= 0 else None
    match = _DURATION.match(str(text).strip())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def load_thresholds(text: str, source: str = "<thresholds>") -> Thresholds:
    """Parse and check a thresholds file; raises ThresholdsError listing every problem."""
    from kpi_state.thresholds_yaml import parse  # the parser builds this module's classes

    return parse(text, source)


def default_text() -> str:
    return resources.files("kpi_state").joinpath("defaults/thresholds.yaml").read_text(encoding="utf-8")


def default_thresholds() -> Thresholds:
    return load_thresholds(default_text(), "kpi_state/defaults/thresholds.yaml")


def lineage_in(directory: Any) -> Callable[[str], tuple[str, ...]]:
    """Lineage through a RepDirectory: a rep falls back to its team's, region's, then global overrides."""

    def lineage(scope: str) -> tuple[str, ...]:
        kind, _, ident = scope.partition(":")
        if kind == "rep":
            placed = directory.of(ident)
            return (scope, f"team:{placed.team_id}", f"region:{placed.region_id}", "global")
        if kind == "team":
            return (scope, f"region:{directory.region_of_team(ident)}", "global")
        return lineage_of(scope)

    return lineage
