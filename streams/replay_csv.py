"""Turn a one-row-per-opportunity CRM export (CSV) into contract envelopes in event-time order."""

from __future__ import annotations

import csv
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpi_state.errors import KpiError

SOURCE = "csv-replay"
WON = "won"
LOST = "lost"
OUTCOMES = (WON, LOST)

# Reasons a row is left out of a replay (SkippedRow.reason).
MISSING_ID = "missing_id"
DUPLICATE_ID = "duplicate_id"
MISSING_AGENT = "missing_agent"
UNKNOWN_STAGE = "unknown_stage"
NO_DATE = "no_date"
BAD_DATE = "bad_date"
NO_CLOSE_DATE = "no_close_date"
CLOSE_BEFORE_ENGAGE = "close_before_engage"
BAD_AMOUNT = "bad_amount"

# Derived once from a fixed name so ids are identical on every machine and every run.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kpi-pipeline:csv-replay")

# Same-instant events of one opportunity must arrive in lifecycle order.
_RANK = {"opportunity.created": 0, "opportunity.stage_changed": 1,
         "opportunity.won": 2, "opportunity.lost": 2}

# Reference data from a file has no time of its own; "valid since the epoch" keeps it
# ahead of every replayed event.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

DEFAULT_STAGE_MAP: Mapping[str, str] = MappingProxyType(
    {"Prospecting": "prospecting", "Engaging": "qualified", "Won": WON, "Lost": LOST}
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def slugify(text: str) -> str:
    """'Moses Frase' -> 'moses-frase': case-folded, accents dropped, other runs become one dash."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # \W is Unicode-aware, so names in non-Latin scripts keep their letters.
    return re.sub(r"[\W_]+", "-", bare).strip("-")


def product_key(name: str) -> str:
    """Spelling-insensitive key: 'GTX Pro', 'GTXPro' and 'gtx-pro' all give 'gtxpro'."""
    return re.sub(r"[\W_]+", "", name.casefold())


class CsvFormatError(KpiError, ValueError):
    """A file that cannot be read as the expected CSV; names the file, line and reason."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


class CsvRow(dict[str, str]):
    """One data row of a CSV file, remembering the file line it started on."""

    line: int | None = None


@dataclass(frozen=True)
class ColumnMapping:
    """How an export's columns and values map onto the contract; defaults fit the Maven sample.

    A column set to None is absent from the file. `stage_map` keys are the file's
    deal-stage values (matched ignoring case and surrounding spaces); its values are
    configured stages or the outcomes won/lost. An opportunity is created in
    `created_stage`; a row that reached the engaging step (or an outcome) enters
    `engaged_stage` at its engage date. `product_catalogue` (canonical name -> list
    price or None, e.g. from products.csv) makes product names canonical by
    `product_key`, and its price becomes the created event's expected amount.
    `product_aliases` (file value -> name) is applied first, for what a key cannot fix.
    `id_prefix` namespaces opportunity and account ids, not rep ids (reps must match
    the rep directory and other sources).
    """

    opportunity_id: str = "opportunity_id"
    sales_agent: str = "sales_agent"
    deal_stage: str = "deal_stage"
    product: str | None = "product"
    account: str | None = "account"
    engage_date: str | None = "engage_date"
    close_date: str | None = "close_date"
    close_value: str | None = "close_value"
    # Read-only proxies are shared safely; the factory only satisfies dataclass's mutability check.
    stage_map: Mapping[str, str] = field(default_factory=lambda: DEFAULT_STAGE_MAP)
    created_stage: str = "prospecting"
    engaged_stage: str = "qualified"
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    timezone: str = "UTC"
    currency: str = "USD"
    id_prefix: str = ""
    rep_id_of: Callable[[str], str] = slugify
    account_id_of: Callable[[str], str] = slugify
    product_aliases: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    product_catalogue: Mapping[str, Decimal | None] = field(default_factory=lambda: _EMPTY)

    def required_columns(self) -> tuple[str, ...]:
        """Every column this mapping names; the file must have them all."""
        names = (self.opportunity_id, self.sales_agent, self.deal_stage, self.product,
                 self.account, self.engage_date, self.close_date, self.close_value)
        return tuple(name for name in names if name is not None)


@dataclass(frozen=True)
class SkippedRow:
    """A row that produced no event: 1-based data row, file line when known, and why."""

    row: int
    opportunity_id: str | None
    reason: str
    detail: str
    line: int | None = None


@dataclass
class ReplayResult:
    """Envelopes in event-time order, the rows left out, and what was produced."""

    events: list[dict[str, Any]]
    skipped: list[SkippedRow]
    counts: dict[str, int]

    def skipped_by_reason(self) -> dict[str, int]:
        """How many rows were skipped, per reason code."""
        return dict(Counter(item.reason for item in self.skipped))


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


# --- envelopes ------------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    # The contract's examples write UTC as "Z"; both spellings are RFC 3339.
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _envelope(kind: str, event_id: str, moment: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "occurred_at": _rfc3339(moment),
            "source": SOURCE, "schema_version": 1, "data": data}


def opportunity_event_id(opportunity_id: str, step: str) -> str:
    """Deterministic id of one lifecycle step, so a second replay is dropped as duplicates."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"opportunity|{opportunity_id}|{step}"))


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


# --- one row -------------------------------------------------------------------------


class _Skip(Exception):
    """Internal: this row cannot be replayed, for `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Plan:
    """A mapping checked against the configured stages, with its lookups prepared."""

    mapping: ColumnMapping
    stages: tuple[str, ...]
    zone: ZoneInfo
    stage_of: dict[str, str]
    products: dict[str, str]


def _plan(mapping: ColumnMapping, stages: tuple[str, ...]) -> _Plan:
    known = set(stages) | set(OUTCOMES)
    wrong = sorted({v for v in mapping.stage_map.values() if v not in known})
    for name in (mapping.created_stage, mapping.engaged_stage):
        if name not in stages:
            wrong.append(name)
    if wrong:
        raise ValueError(
            f"stage(s) not configured: {', '.join(wrong)} (stages: {', '.join(stages)})"
        )
    if stages.index(mapping.engaged_stage) < stages.index(mapping.created_stage):
        raise ValueError("engaged_stage comes before created_stage in the configured stages")
    try:
        zone = ZoneInfo(mapping.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {mapping.timezone!r}") from exc
    stage_of = {key.strip().casefold(): value for key, value in mapping.stage_map.items()}
    products = {product_key(name): name for name in mapping.product_catalogue}
    return _Plan(mapping, stages, zone, stage_of, products)


def _cell(row: Mapping[str, str], column: str | None) -> str:
    if column is None:
        return ""
    return (row.get(column) or "").strip()


def _parse_date(text: str, plan: _Plan, column: str) -> datetime | None:
    if not text:
        return None
    for fmt in plan.mapping.date_formats:
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            continue
        # A bare date or local time means that wall-clock time in the configured zone.
        return moment if moment.tzinfo else moment.replace(tzinfo=plan.zone)
    raise _Skip(BAD_DATE, f"{column} {text!r} matches none of {plan.mapping.date_formats}")


def _amount(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def _won_amount(row: Mapping[str, str], plan: _Plan) -> Decimal:
    text = _cell(row, plan.mapping.close_value)
    value = _amount(text) if text else None
    if value is None:
        raise _Skip(BAD_AMOUNT, f"won with close value {text!r}")
    return value


def _canonical_product(raw: str, plan: _Plan) -> tuple[str, Decimal | None, bool]:
    """(product name, list price, known) after aliases and the catalogue."""
    name = plan.mapping.product_aliases.get(raw, raw)
    if not plan.products:
        return name, None, True
    canonical = plan.products.get(product_key(name))
    if canonical is None:
        return name, None, False
    return canonical, plan.mapping.product_catalogue[canonical], True


@dataclass(frozen=True)
class _Row:
    """What one usable row says, in contract terms."""

    opportunity_id: str
    rep_id: str
    target: str
    created_at: datetime
    closed_at: datetime | None
    amount: Decimal | None
    account_id: str | None
    product: str | None
    list_price: Decimal | None
    product_known: bool


def _required_text(row: Mapping[str, str], column: str, reason: str) -> str:
    value = _cell(row, column)
    if not value:
        raise _Skip(reason, f"empty {column}")
    return value


def _target_stage(row: Mapping[str, str], plan: _Plan) -> str:
    raw = _cell(row, plan.mapping.deal_stage)
    target = plan.stage_of.get(raw.casefold())
    if target is None:
        raise _Skip(UNKNOWN_STAGE, f"deal stage {raw!r} is not in the stage mapping")
    return target


def _dates(row: Mapping[str, str], plan: _Plan, target: str) -> tuple[datetime, datetime | None]:
    """(created time, close time); never invents a date the row does not carry."""
    mapping = plan.mapping
    engaged = _parse_date(_cell(row, mapping.engage_date), plan, mapping.engage_date or "")
    if target not in OUTCOMES:
        # An open deal's close date, if any, is a forecast, not something that happened.
        if engaged is None:
            raise _Skip(NO_DATE, "open opportunity without an engage date")
        return engaged, None
    closed = _parse_date(_cell(row, mapping.close_date), plan, mapping.close_date or "")
    if closed is None:
        raise _Skip(NO_DATE if engaged is None else NO_CLOSE_DATE, f"{target} without a close date")
    if engaged is not None and closed < engaged:
        raise _Skip(CLOSE_BEFORE_ENGAGE, "close date is before engage date")
    # The first known date is when the opportunity is known to exist.
    return (engaged or closed), closed


def _parse_row(row: Mapping[str, str], plan: _Plan) -> _Row:
    mapping = plan.mapping
    opportunity_id = mapping.id_prefix + _required_text(row, mapping.opportunity_id, MISSING_ID)
    agent = _required_text(row, mapping.sales_agent, MISSING_AGENT)
    rep_id = mapping.rep_id_of(agent)
    if not rep_id:
        raise _Skip(MISSING_AGENT, f"no rep id can be made from {mapping.sales_agent}")
    target = _target_stage(row, plan)
    created_at, closed_at = _dates(row, plan, target)
    amount = _won_amount(row, plan) if target == WON else None
    account = _cell(row, mapping.account)
    account_id = mapping.id_prefix + mapping.account_id_of(account) if account else None
    raw_product = _cell(row, mapping.product)
    product, price, known = (
        _canonical_product(raw_product, plan) if raw_product else (None, None, True)
    )
    return _Row(opportunity_id, rep_id, target, created_at, closed_at, amount,
                account_id, product, price, known)


def _created(parsed: _Row, plan: _Plan) -> dict[str, Any]:
    data: dict[str, Any] = {"opportunity_id": parsed.opportunity_id, "rep_id": parsed.rep_id,
                            "stage": plan.mapping.created_stage}
    if parsed.account_id:
        data["account_id"] = parsed.account_id
    if parsed.product:
        data["product"] = parsed.product
    if parsed.list_price is not None:
        # The list price is the CRM's usual expected value of an opportunity for one product.
        data["amount"] = format(parsed.list_price, "f")
        data["currency"] = plan.mapping.currency
    return _envelope("opportunity.created", opportunity_event_id(parsed.opportunity_id, "created"),
                     parsed.created_at, data)


def _reached_stage(parsed: _Row, plan: _Plan) -> str:
    return plan.mapping.engaged_stage if parsed.target in OUTCOMES else parsed.target


def _stage_change(parsed: _Row, plan: _Plan) -> dict[str, Any] | None:
    start, reached = plan.mapping.created_stage, _reached_stage(parsed, plan)
    if plan.stages.index(reached) <= plan.stages.index(start):
        return None
    data = {"opportunity_id": parsed.opportunity_id, "rep_id": parsed.rep_id,
            "to_stage": reached, "from_stage": start}
    event_id = opportunity_event_id(parsed.opportunity_id, f"stage:{reached}")
    return _envelope("opportunity.stage_changed", event_id, parsed.created_at, data)


def _outcome(parsed: _Row, plan: _Plan) -> dict[str, Any] | None:
    if parsed.target not in OUTCOMES or parsed.closed_at is None:
        return None
    data: dict[str, Any] = {"opportunity_id": parsed.opportunity_id, "rep_id": parsed.rep_id}
    if parsed.target == WON and parsed.amount is not None:
        data["amount"] = format(parsed.amount, "f")
        data["currency"] = plan.mapping.currency
    event_id = opportunity_event_id(parsed.opportunity_id, parsed.target)
    return _envelope(f"opportunity.{parsed.target}", event_id, parsed.closed_at, data)


def _row_events(parsed: _Row, plan: _Plan) -> list[tuple[datetime, dict[str, Any]]]:
    """(event time, envelope) pairs; the time stays a datetime so sorting is by instant."""
    timed = [(parsed.created_at, _created(parsed, plan)),
             (parsed.created_at, _stage_change(parsed, plan))]
    if parsed.closed_at is not None:
        timed.append((parsed.closed_at, _outcome(parsed, plan)))
    return [(moment, event) for moment, event in timed if event is not None]


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
