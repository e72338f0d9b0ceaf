"""The KPI value record of contract section 4, and how its compacted key is spelled."""

from __future__ import annotations

from typing import Any

import msgspec

from kpi_state.calendar import CALENDAR_WINDOWS


class KpiValue(msgspec.Struct, omit_defaults=False, dict=True):
    """One KPI for one scope and window, as published on kpi.values, HTTP and Redis."""

    kpi: str
    scope: str
    window: str
    window_start: str | None
    window_end: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    unit: str
    status: str
    dims: dict[str, str]
    updated_at: str

    @property
    def key(self) -> str:
        """`{kpi}|{scope}|{window}|{window_start}`, dims appended as `|name=value`."""
        # Asked for by every sink: spelled once, kept in the instance dict (`dict=True`),
        # which the encoders ignore. (functools.cached_property takes a lock per call.)
        cache = self.__dict__
        key = cache.get("key")
        if key is None:
            key = cache["key"] = record_key(self.kpi, self.scope, self.window, self.window_start, self.dims)
        return key


def record_key(
    kpi: str, scope: str, window: str, window_start: str | None, dims: dict[str, str]
) -> str:
    # Rolling windows and `all` have one key each (their record is replaced as the
    # window moves), so only calendar windows put their start in the key.
    start = window_start if window in CALENDAR_WINDOWS and window_start else ""
    return f"{kpi}|{scope}|{window}|{start}" + dims_suffix(tuple(dims.items()))


_SUFFIXES: dict[tuple[tuple[str, str], ...], str] = {}


def dims_suffix(dims: tuple[tuple[str, str], ...]) -> str:
    """The `|name=value` part of a key or field, names sorted (a few dozen distinct: cached)."""
    if not dims:
        return ""  # most KPIs have none: no lookup for them
    suffix = _SUFFIXES.get(dims)
    if suffix is None:
        suffix = "".join(f"|{name}={value}" for name, value in sorted(dims))
        if len(_SUFFIXES) < 10_000:
            _SUFFIXES[dims] = suffix
    return suffix


def scope_kind_and_id(scope: str) -> tuple[str, str]:
    """`rep:r-17` → (`rep`, `r-17`); `global` → (`global`, `global`)."""
    kind, _, ident = scope.partition(":")
    return kind, ident or kind


_json = msgspec.json.Encoder()


def to_json(record: KpiValue) -> bytes:
    return _json.encode(record)


def encoded(record: KpiValue) -> bytes:
    """The record's JSON, encoded once for every sink (kept like `key`, beside the fields)."""
    cache = record.__dict__
    body = cache.get("json")
    if body is None:
        body = cache["json"] = _json.encode(record)
    return body


def as_dict(record: KpiValue) -> dict[str, Any]:
    return msgspec.to_builtins(record)
