"""One CRM-export row to its opportunity envelopes (created, stage change, won or lost)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.replay_csv_base import (
    BAD_AMOUNT,
    BAD_DATE,
    CLOSE_BEFORE_ENGAGE,
    ColumnMapping,
    MISSING_AGENT,
    MISSING_ID,
    NO_CLOSE_DATE,
    NO_DATE,
    OUTCOMES,
    UNKNOWN_STAGE,
    WON,
    _envelope,
    opportunity_event_id,
    product_key,
)


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
