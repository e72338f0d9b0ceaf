"""The YAML side of the thresholds file: walks yaml's node tree so every problem keeps its line."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import yaml

from kpi_state.catalogue import CATALOGUE
from kpi_state.rollup import WINDOWS
from kpi_state.thresholds import (
    _OVERRIDABLE,
    DIRECTIONS,
    NOTIFIER_TYPES,
    SEVERITIES,
    Bounds,
    KpiRule,
    Notifier,
    Objective,
    Thresholds,
    ThresholdsError,
    _SCOPE,
    parse_duration,
)

class _Checker:
    """Walks the YAML node tree; each problem keeps the line of the node it concerns."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []

    def bad(self, node: yaml.Node | None, reason: str) -> None:
        self.problems.append(((node.start_mark.line + 1) if node is not None else 0, reason))

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"{what} must be a mapping")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is None:
                self.bad(key, f"{what}: keys must be plain names")
            elif name in out:
                self.bad(key, f"{what}: {name!r} given twice")
            elif allowed and name not in allowed:
                self.bad(key, f"{what}: unknown field {name!r} (expected one of {', '.join(allowed)})")
            else:
                out[name] = (key, value)
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        return yaml.safe_load(yaml.serialize(node))

    def number(self, node: yaml.Node, what: str, minimum: float | None = None) -> float | None:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.bad(node, f"{what} must be a number")
            return None
        if minimum is not None and value < minimum:
            self.bad(node, f"{what} must be at least {minimum:g}")
            return None
        return float(value)

    def text(self, node: yaml.Node, what: str) -> str | None:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            self.bad(node, f"{what} must be a non-empty string")
            return None
        return value

    def choice(self, node: yaml.Node, what: str, options: tuple[str, ...]) -> str | None:
        value = self.scalar(node)
        if value not in options:
            self.bad(node, f"{what} must be one of {', '.join(options)}, not {value!r}")
            return None
        return value

    def duration(self, node: yaml.Node, what: str) -> float | None:
        value = parse_duration(self.scalar(node))
        if value is None:
            self.bad(node, f"{what} must be a duration such as 90s, 15m, 2h, 1d or seconds")
        return value

    def windows(self, node: yaml.Node, what: str) -> tuple[str, ...] | None:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.bad(node, f"{what} must be a non-empty list of windows ({', '.join(WINDOWS)})")
            return None
        out = []
        for item in node.value:
            window = self.scalar(item)
            if window not in WINDOWS:
                self.bad(item, f"unknown window {window!r} (expected one of {', '.join(WINDOWS)})")
            else:
                out.append(window)
        return tuple(out)


_KPI_FIELDS = ("windows", "direction", "red", "amber", "clear_margin", "min_sample", "pending",
               "severity", "summary", "runbook", "overrides", "objectives")


def _kpi_rule(c: _Checker, kpi: str, key: yaml.Node, node: yaml.Node, default_windows: tuple[str, ...]) -> KpiRule | None:
    if kpi not in CATALOGUE:
        c.bad(key, f"unknown KPI {kpi!r} (see kpi_state/catalogue.py)")
        return None
    fields = c.mapping(node, f"kpis.{kpi}", _KPI_FIELDS)
    before = len(c.problems)
    windows = c.windows(fields["windows"][1], f"kpis.{kpi}.windows") if "windows" in fields else default_windows
    bounds = None
    if "red" in fields or "direction" in fields:
        bounds = _bounds(c, kpi, node, fields)
    elif "amber" in fields:
        c.bad(fields["amber"][0], f"kpis.{kpi}: amber needs red and direction")
    summary = c.text(fields["summary"][1], f"kpis.{kpi}.summary") if "summary" in fields else None
    runbook = c.text(fields["runbook"][1], f"kpis.{kpi}.runbook") if "runbook" in fields else None
    overrides: dict[str, dict[str, Any]] = {}
    if "overrides" in fields:
        overrides = _overrides(c, kpi, fields["overrides"][1], bounds)
    objectives: tuple[Objective, ...] = ()
    if "objectives" in fields:
        objectives = _objectives(c, kpi, fields["objectives"][1])
    if len(c.problems) > before or windows is None:
        return None
    spec = CATALOGUE[kpi]
    return KpiRule(kpi, windows, bounds, summary or f"{spec.help} is red", runbook or "",
                   overrides, objectives)


def _bounds(c: _Checker, kpi: str, node: yaml.Node, fields: dict[str, tuple[yaml.Node, yaml.Node]]) -> Bounds | None:
    where = f"kpis.{kpi}"
    for needed in ("direction", "red"):
        if needed not in fields:
            c.bad(node, f"{where}: {needed} is required with bounds")
            return None
    direction = c.choice(fields["direction"][1], f"{where}.direction", DIRECTIONS)
    red = c.number(fields["red"][1], f"{where}.red")
    amber = c.number(fields["amber"][1], f"{where}.amber") if "amber" in fields else None
    margin = c.number(fields["clear_margin"][1], f"{where}.clear_margin", 0) if "clear_margin" in fields else 0.0
    sample = c.number(fields["min_sample"][1], f"{where}.min_sample", 0) if "min_sample" in fields else 0.0
    pending = c.duration(fields["pending"][1], f"{where}.pending") if "pending" in fields else 0.0
    severity = (c.choice(fields["severity"][1], f"{where}.severity", SEVERITIES)
                if "severity" in fields else "warning")
    if None in (direction, red, margin, sample, pending, severity) or ("amber" in fields and amber is None):
        return None
    bounds = Bounds(direction, red, amber, margin, sample, pending, severity)  # type: ignore[arg-type]
    _order(c, fields.get("amber", fields["red"])[1], where, bounds)
    return bounds


def _order(c: _Checker, node: yaml.Node, where: str, b: Bounds) -> None:
    if b.amber is None:
        return
    if b.direction == "higher" and b.amber < b.red:
        c.bad(node, f"{where}: with direction higher, amber ({b.amber:g}) must be at least red ({b.red:g})")
    if b.direction == "lower" and b.amber > b.red:
        c.bad(node, f"{where}: with direction lower, amber ({b.amber:g}) must be at most red ({b.red:g})")


def _overrides(c: _Checker, kpi: str, node: yaml.Node, bounds: Bounds | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(node, yaml.SequenceNode):
        c.bad(node, f"kpis.{kpi}.overrides must be a list")
        return out
    for item in node.value:
        fields = c.mapping(item, f"kpis.{kpi}.overrides[]", ("scope", *_OVERRIDABLE))
        if "scope" not in fields:
            c.bad(item, f"kpis.{kpi}.overrides[]: scope is required (rep:ID, team:ID, region:ID or global)")
            continue
        scope = _scope(c, fields["scope"][1])
        changes: dict[str, Any] = {}
        for name in _OVERRIDABLE:
            if name not in fields:
                continue
            value_node = fields[name][1]
            if name == "pending":
                changes["pending_s"] = c.duration(value_node, f"kpis.{kpi}.overrides[].pending")
            elif name == "severity":
                changes["severity"] = c.choice(value_node, f"kpis.{kpi}.overrides[].severity", SEVERITIES)
            else:
                minimum = 0 if name in ("clear_margin", "min_sample") else None
                changes[name] = c.number(value_node, f"kpis.{kpi}.overrides[].{name}", minimum)
        if bounds is None:
            c.bad(item, f"kpis.{kpi}: overrides need the KPI's own direction and red")
            continue
        if scope is None or None in changes.values():
            continue
        if scope in out:
            c.bad(fields["scope"][1], f"kpis.{kpi}: two overrides for scope {scope!r}")
            continue
        _order(c, item, f"kpis.{kpi}.overrides[{scope}]", replace(bounds, **changes))
        out[scope] = changes
    return out


def _objectives(c: _Checker, kpi: str, node: yaml.Node) -> tuple[Objective, ...]:
    out: list[Objective] = []
    if not isinstance(node, yaml.SequenceNode):
        c.bad(node, f"kpis.{kpi}.objectives must be a list")
        return ()
    if CATALOGUE[kpi].dims:
        c.bad(node, f"kpis.{kpi}: objectives are for KPIs without dims")
        return ()
    if CATALOGUE[kpi].calendar_only:
        c.bad(node, f"kpis.{kpi}: objectives are for KPIs that have a level, not a change")
        return ()
    seen: set[tuple[str, str]] = set()
    for item in node.value:
        fields = c.mapping(item, f"kpis.{kpi}.objectives[]", ("scope", "window", "value"))
        missing = [name for name in ("scope", "window", "value") if name not in fields]
        if missing:
            c.bad(item, f"kpis.{kpi}.objectives[]: {', '.join(missing)} required")
            continue
        scope = _scope(c, fields["scope"][1])
        window = c.choice(fields["window"][1], f"kpis.{kpi}.objectives[].window", WINDOWS)
        value = c.number(fields["value"][1], f"kpis.{kpi}.objectives[].value")
        if value == 0:
            c.bad(fields["value"][1], f"kpis.{kpi}.objectives[].value must not be 0 (attainment divides by it)")
            continue
        if scope is None or window is None or value is None:
            continue
        if (scope, window) in seen:
            c.bad(item, f"kpis.{kpi}: two objectives for {scope} {window}")
            continue
        seen.add((scope, window))
        out.append(Objective(scope, window, value))
    return tuple(out)


def _scope(c: _Checker, node: yaml.Node) -> str | None:
    value = c.scalar(node)
    if not isinstance(value, str) or not _SCOPE.match(value):
        c.bad(node, f"scope must be rep:ID, team:ID, region:ID or global, not {value!r}")
        return None
    return value


def _notifiers(c: _Checker, node: yaml.Node) -> tuple[Notifier, ...]:
    if not isinstance(node, yaml.SequenceNode):
        c.bad(node, "notifiers must be a list")
        return ()
    out: list[Notifier] = []
    names: set[str] = set()
    for item in node.value:
        fields = c.mapping(item, "notifiers[]", ("name", "type", "url", "allow_hosts", "resend_interval"))
        missing = [name for name in ("name", "type", "url") if name not in fields]
        if missing:
            c.bad(item, f"notifiers[]: {', '.join(missing)} required")
            continue
        name = c.text(fields["name"][1], "notifiers[].name")
        kind = c.choice(fields["type"][1], "notifiers[].type", NOTIFIER_TYPES)
        url = c.text(fields["url"][1], "notifiers[].url")
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            c.bad(fields["url"][1], "notifiers[].url must be an http:// or https:// URL")
            url = None
        hosts: list[str] = []
        if "allow_hosts" in fields:
            hosts_node = fields["allow_hosts"][1]
            if not isinstance(hosts_node, yaml.SequenceNode):
                c.bad(hosts_node, "notifiers[].allow_hosts must be a list of host names or addresses")
            else:
                hosts = [h for h in (c.text(n, "notifiers[].allow_hosts[]") for n in hosts_node.value) if h]
        resend = c.duration(fields["resend_interval"][1], "notifiers[].resend_interval") if "resend_interval" in fields else 60.0
        if resend is not None and resend < 1:
            c.bad(fields["resend_interval"][1], "notifiers[].resend_interval must be at least 1s")
            resend = None
        if name in names:
            c.bad(fields["name"][1], f"notifiers: name {name!r} given twice")
            continue
        if None in (name, kind, url, resend):
            continue
        names.add(name)  # type: ignore[arg-type]
        out.append(Notifier(name, kind, url, tuple(h.lower() for h in hosts), resend,  # type: ignore[arg-type]
                            item.start_mark.line + 1))
    return tuple(out)


def parse(text: str, source: str = "<thresholds>") -> Thresholds:
    """Parse and check a thresholds file; raises ThresholdsError listing every problem."""
    c = _Checker()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ThresholdsError(source, [((mark.line + 1) if mark else 0, f"not valid YAML: {exc.problem}")]) from None
    if root is None:
        raise ThresholdsError(source, [(1, "the file is empty (expected version: 1 and kpis:)")])
    top = c.mapping(root, "the file", ("version", "evaluation", "kpis", "notifiers", "inputs"))
    if "version" not in top:
        c.bad(root, "version: 1 is required")
    elif c.scalar(top["version"][1]) != 1:
        c.bad(top["version"][1], "only version 1 is known")
    default_windows: tuple[str, ...] = ("30d",)
    if "evaluation" in top:
        evaluation = c.mapping(top["evaluation"][1], "evaluation", ("default_windows",))
        if "default_windows" in evaluation:
            default_windows = c.windows(evaluation["default_windows"][1], "evaluation.default_windows") or ()
    rules: dict[str, KpiRule] = {}
    if "kpis" not in top:
        c.bad(root, "kpis: is required (one entry per KPI to judge)")
    else:
        for kpi, (key, node) in c.mapping(top["kpis"][1], "kpis", ()).items():
            rule = _kpi_rule(c, kpi, key, node, default_windows)
            if rule is not None:
                rules[kpi] = rule
    notifiers = _notifiers(c, top["notifiers"][1]) if "notifiers" in top else ()
    silent = 1800.0
    if "inputs" in top:
        inputs = c.mapping(top["inputs"][1], "inputs", ("silent_after",))
        if "silent_after" in inputs:
            silent = c.duration(inputs["silent_after"][1], "inputs.silent_after") or silent
    if c.problems:
        raise ThresholdsError(source, c.problems)
    return Thresholds(rules, notifiers, silent)


