"""The CRM-export replay's vocabulary: column mapping, skip reasons, results, envelopes."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

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
