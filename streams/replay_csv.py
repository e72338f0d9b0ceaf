"""Turn a one-row-per-opportunity CRM export (CSV) into contract envelopes in event-time order."""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

# The vocabulary lives in replay_csv_base and is re-exported: callers import it from here.
from streams.replay_csv_base import (
    BAD_AMOUNT,
    BAD_DATE,
    CLOSE_BEFORE_ENGAGE,
    ColumnMapping,
    CsvFormatError,
    CsvRow,
    DEFAULT_STAGE_MAP,
    DUPLICATE_ID,
    EPOCH,
    LOST,
    MISSING_AGENT,
    MISSING_ID,
    NO_CLOSE_DATE,
    NO_DATE,
    OUTCOMES,
    ReplayResult,
    SOURCE,
    SkippedRow,
    UNKNOWN_STAGE,
    WON,
    _ID_NAMESPACE,
    _RANK,
    _envelope,
    opportunity_event_id,
    product_key,
    slugify,
)
from streams.replay_rows import (
    _Skip,
    _amount,
    _cell,
    _parse_row,
    _plan,
    _row_events,
)


__all__ = [
    "BAD_AMOUNT",
    "BAD_DATE",
    "CLOSE_BEFORE_ENGAGE",
    "ColumnMapping",
    "CsvFormatError",
    "CsvRow",
    "DEFAULT_STAGE_MAP",
    "DUPLICATE_ID",
    "EPOCH",
    "LOST",
    "MISSING_AGENT",
    "MISSING_ID",
    "NO_CLOSE_DATE",
    "NO_DATE",
    "OUTCOMES",
    "ReplayResult",
    "SOURCE",
    "SkippedRow",
    "UNKNOWN_STAGE",
    "WON",
    "convert",
    "load_product_catalogue",
    "load_rep_directory",
    "opportunity_event_id",
    "product_key",
    "read_csv",
    "replay_file",
    "slugify",
]


# --- reading files ------------------------------------------------------------------


def _open_text(path: Path) -> Any:
    try:
        # utf-8-sig drops the byte-order mark spreadsheet tools put in front of the header.
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CsvFormatError(path, None, f"cannot open: {exc.strerror or exc}") from exc


def _check_header(path: Path, header: list[str], required: Iterable[str]) -> list[str]:
    names = [name.strip() for name in header]
    if not any(names):
        raise CsvFormatError(path, 1, "header row is empty")
    if "" in names:
        raise CsvFormatError(path, 1, f"header column {names.index('') + 1} has no name")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CsvFormatError(path, 1, f"header repeats column(s): {', '.join(repeated)}")
    missing = [name for name in required if name not in names]
    if missing:
        raise CsvFormatError(
            path, 1, f"missing required column(s): {', '.join(missing)} "
                     f"(found: {', '.join(names)})"
        )
    return names


def read_csv(path: str | Path, *, required: Iterable[str] = ()) -> Iterator[CsvRow]:
    """Rows of a headed CSV file as dicts; CsvFormatError (file, line, reason) if malformed."""
    path = Path(path)
    with _open_text(path) as handle:
        # strict: a stray quote is an error to report, not a field to guess at.
        reader = csv.reader(handle, strict=True)
        line_before = 0
        try:
            header = next(reader, None)
            if header is None:
                raise CsvFormatError(path, 1, "file is empty (no header row)")
            names = _check_header(path, header, required)
            line_before = reader.line_num
            for fields in reader:
                start, line_before = line_before + 1, reader.line_num
                if not fields:
                    continue  # blank line
                if len(fields) != len(names):
                    raise CsvFormatError(
                        path, start, f"row has {len(fields)} fields, header has {len(names)}"
                    )
                row = CsvRow(zip(names, fields))
                row.line = start
                yield row
        except csv.Error as exc:
            raise CsvFormatError(path, line_before + 1, f"malformed CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CsvFormatError(path, line_before + 1, "not UTF-8 text") from exc


# --- rep directory --------------------------------------------------------------------


def _directory_cell(path: Path, row: CsvRow, column: str) -> str:
    value = row[column].strip()
    if not value:
        raise CsvFormatError(path, row.line, f"empty {column}")
    return value


def _rep_event(name: str, manager: str, region: str, ids: tuple[str, str, str],
               as_of: datetime) -> dict[str, Any]:
    rep_id, team_id, region_id = ids
    data = {"rep_id": rep_id, "team_id": team_id, "region_id": region_id,
            "name": name, "manager": manager}
    # The id covers the content: re-sending the same mapping is a duplicate, while a
    # rep who moved team gets a new id instead of a conflicting one.
    content = "|".join(("rep", rep_id, team_id, region_id, name, manager, region))
    return _envelope("rep.upserted", str(uuid.uuid5(_ID_NAMESPACE, content)), as_of, data)


def load_rep_directory(
    path: str | Path,
    *,
    agent_column: str = "sales_agent",
    manager_column: str = "manager",
    region_column: str = "regional_office",
    rep_id_of: Callable[[str], str] = slugify,
    team_id_of: Callable[[str], str] = slugify,
    region_id_of: Callable[[str], str] = slugify,
    as_of: datetime = EPOCH,
) -> list[dict[str, Any]]:
    """`rep.upserted` envelopes from an agent -> manager (team) -> office (region) CSV."""
    path = Path(path)
    events: list[dict[str, Any]] = []
    seen: dict[str, tuple[str, tuple[str, str, str], int | None]] = {}
    for row in read_csv(path, required=(agent_column, manager_column, region_column)):
        name = _directory_cell(path, row, agent_column)
        manager = _directory_cell(path, row, manager_column)
        region = _directory_cell(path, row, region_column)
        ids = (rep_id_of(name), team_id_of(manager), region_id_of(region))
        if not all(ids):
            raise CsvFormatError(path, row.line, f"cannot make ids from {name!r}, {manager!r}, "
                                                 f"{region!r}")
        earlier = seen.get(ids[0])
        if earlier is not None:
            if earlier[:2] != (name, ids):
                raise CsvFormatError(path, row.line, f"rep {ids[0]!r} already mapped differently "
                                                     f"on line {earlier[2]}")
            continue  # the same line twice says nothing new
        seen[ids[0]] = (name, ids, row.line)
        events.append(_rep_event(name, manager, region, ids, as_of))
    return events


def load_product_catalogue(
    path: str | Path, *, product_column: str = "product", price_column: str | None = "sales_price"
) -> dict[str, Decimal | None]:
    """Canonical product name -> list price (None if absent) from a products CSV."""
    path = Path(path)
    required = (product_column,) if price_column is None else (product_column, price_column)
    catalogue: dict[str, Decimal | None] = {}
    for row in read_csv(path, required=required):
        name = _directory_cell(path, row, product_column)
        raw = row[price_column].strip() if price_column else ""
        price = _amount(raw) if raw else None
        if raw and price is None:
            raise CsvFormatError(path, row.line, f"bad {price_column} {raw!r}")
        catalogue[name] = price
    return catalogue


# --- the whole file ------------------------------------------------------------------


def _order_key(item: tuple[datetime, dict[str, Any]]) -> tuple[float, int, str]:
    moment, event = item
    return moment.timestamp(), _RANK[event["type"]], event["data"]["opportunity_id"]


def _tally(events: list[dict[str, Any]], rows: int, skipped: int, unknown: int) -> dict[str, int]:
    kinds = Counter(event["type"].split(".", 1)[1] for event in events)
    counts = {name: kinds.get(name, 0) for name in ("created", "stage_changed", WON, LOST)}
    counts.update(rows=rows, skipped=skipped, unknown_product=unknown)
    return counts


def convert(
    rows: Iterable[Mapping[str, str]], mapping: ColumnMapping, *, stages: tuple[str, ...]
) -> ReplayResult:
    """Events derived from opportunity rows, sorted by event time; unusable rows are reported."""
    plan = _plan(mapping, stages)
    timed: list[tuple[datetime, dict[str, Any]]] = []
    skipped: list[SkippedRow] = []
    seen: set[str] = set()
    unknown_products = total = 0
    for total, row in enumerate(rows, start=1):
        line = getattr(row, "line", None)
        raw_id = _cell(row, mapping.opportunity_id) or None
        try:
            parsed = _parse_row(row, plan)
            if parsed.opportunity_id in seen:
                raise _Skip(DUPLICATE_ID, "opportunity id already seen in this file")
        except _Skip as skip:
            skipped.append(SkippedRow(total, raw_id, skip.reason, skip.detail, line))
            continue
        seen.add(parsed.opportunity_id)
        unknown_products += not parsed.product_known
        timed.extend(_row_events(parsed, plan))
    timed.sort(key=_order_key)
    events = [event for _, event in timed]
    return ReplayResult(events, skipped, _tally(events, total, len(skipped), unknown_products))


def replay_file(
    path: str | Path, mapping: ColumnMapping, *, stages: tuple[str, ...]
) -> ReplayResult:
    """read_csv + convert: the whole opportunities-csv format in one call."""
    return convert(read_csv(path, required=mapping.required_columns()), mapping, stages=stages)
