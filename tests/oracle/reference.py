"""Offline reference: every KPI of CONTRACT §4 recomputed by brute force from the event list.

Tests compare what the streaming pipeline publishes against this module, so it is written
independently of the engine: it shares only the contract's event structs (`kpi_state.events`)
and constants with it, has its own calendar arithmetic (`tests.oracle.periods`), and favours obvious
code over speed: the events are replayed once to validate them and to build a record per
opportunity and per invoice, those records are turned into plain "facts" (a name, who it is
attributed to, an instant, a value), and every KPI of every window is a sum over the facts
whose local date falls in the window.

`compute_reference(events, directory=...)` returns
`{(kpi, scope, window, window_start, dims): Ratio}`.

Which keys are emitted (a superset of what the pipeline may publish):

* A scope is *active* when at least one fact is attributed to it. Every applied event
  (after de-duplication and after dropping invalid transitions) puts a fact on the local
  day of its `ts` in each scope it counts for: an activity or opportunity event in its
  rep's scopes; an invoice, and each payment or credit note matched to it, in the invoice's
  scopes; spend in its team's scopes (global only without a team). Payments or credit
  notes never matched to an invoice of the same customer count nowhere.
* Calendar windows (`day`, `week` ISO Monday, `month`, `quarter`, `year`, in `tz`): for each
  active scope, every period that contains a local day with at least one of the scope's
  facts; window_start = `periods.utc_text(period start)`. The periodic KPIs below plus
  `revenue_growth`, `price_effect`, `volume_effect` (vs the previous period of the same
  kind for the same scope, which may itself be empty).
* Rolling windows `7d`, `30d`, `90d` (window_start ""): the last N local days up to and
  including the local day of `now`; emitted for every active scope, even when none of its
  facts falls in the window (the values are then 0 or None: the contract replaces a
  rolling record as the window moves), unless `rolling_for_idle_scopes=False`, in which
  case only for scopes with a fact in the window.
* `all` (window_start ""): for every active scope, the periodic KPIs plus the snapshots
  `overdue_receivables`, `open_opportunities`, `pipeline_value` (both also with dims
  `(("stage", s),)` for every configured stage) and `pipeline_velocity`.
* Within an emitted (scope, window, period) every KPI is emitted, including all dims:
  `stage_conversion` for every pair of consecutive configured stages
  (`(("from", a), ("to", b))`), `stage_duration_days` for every configured stage
  (`(("stage", s),)`). All other KPIs have dims `()`.

Periodic KPIs: calls, emails, meetings_booked, demos, prospects_contacted,
opportunities_created, meeting_rate, win_rate, lead_conversion, stage_conversion,
sales_cycle_days, stage_duration_days, bookings, won_deals, average_deal_size, revenue,
orders, units_sold, average_basket, gross_margin, new_customers, cac, purchase_frequency,
clv, ltv_to_cac, days_to_pay. (`objective_attainment` is not covered.)

`Ratio.value` is None when the denominator is 0 (or, for composites, when a factor is
undefined). Numerators are exact (int, Decimal, or Fraction for day sums and composites);
compare with `float()` and a tolerance. For the composite KPIs (clv, ltv_to_cac,
revenue_growth, price_effect, volume_effect, pipeline_velocity) numerator/denominator are
this module's own exact decomposition; only `value` is meant to be compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kpi_state import events as ev
from tests.oracle import periods

DEFAULT_STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
CALENDAR_WINDOWS = ("day", "week", "month", "quarter", "year")
ROLLING_WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
# clv and ltv_to_cac exist only for windows of a month or longer (CONTRACT §4).
CLV_WINDOWS = ("month", "quarter", "year", "30d", "90d", "all")
UNASSIGNED = "unassigned"
SECONDS_PER_DAY = 86400

Number = int | Decimal | Fraction
Key = tuple[str, str, str, str, tuple]

ACTIVITY_KPIS = {
    "call.logged": "calls",
    "email.sent": "emails",
    "meeting.booked": "meetings_booked",
    "demo.completed": "demos",
    "prospect.contacted": "prospects_contacted",
}


@dataclass(frozen=True)
class Ratio:
    """A KPI value: numerator, denominator (None for plain counts and sums), value."""

    numerator: Number | None
    denominator: Number | None
    value: float | None


def _plain(amount: Number) -> Ratio:
    return Ratio(amount, None, float(amount))


def _divide(numerator: Number, denominator: Number) -> Ratio:
    if denominator == 0:
        return Ratio(numerator, denominator, None)
    return Ratio(numerator, denominator, float(Fraction(numerator) / Fraction(denominator)))


_UNDEFINED = Ratio(None, None, None)


def _days_between(later: float, earlier: float) -> Fraction:
    return (Fraction(later) - Fraction(earlier)) / SECONDS_PER_DAY


# --- facts -------------------------------------------------------------------------

# Who a fact counts for: ("rep", rep_id), ("team", team_id) or ("global", "").
Owner = tuple[str, str]


@dataclass(frozen=True)
class _Fact:
    name: str
    owner: Owner
    ts: float
    value: Any  # a number, or the customer id for the distinct "customers" fact
    dims: tuple = ()


@dataclass
class _Opportunity:
    created: ev.OpportunityCreated
    rep: str  # rep on the latest applied event (the current owner)
    entered: list[tuple[str, float, str]] = field(default_factory=list)  # (stage, ts, rep)
    left: dict[str, tuple[float, str]] = field(default_factory=dict)  # stage -> (ts, rep)
    outcome: ev.OpportunityWon | ev.OpportunityLost | None = None

    def current_stage(self) -> str:
        return self.entered[-1][0]


@dataclass
class _Invoice:
    issued: ev.InvoiceIssued
    position: int  # in event-time order, for ties on the first invoice of a customer
    settlements: list[ev.PaymentReceived | ev.CreditNoteIssued] = field(default_factory=list)

    @property
    def owner(self) -> Owner:
        if self.issued.rep_id:
            return ("rep", self.issued.rep_id)
        return ("team", UNASSIGNED)

    def paid(self) -> Decimal:
        return sum((s.amount for s in self.settlements if s.type == "payment.received"), Decimal(0))

    def credited(self) -> Decimal:
        return sum((s.amount for s in self.settlements if s.type == "credit_note.issued"), Decimal(0))

    def fully_paid_ts(self) -> float | None:
        """When payments first reached total − credit notes, walking settlements in event-time order."""
        paid = credited = Decimal(0)
        if paid >= self.issued.total - credited:
            return self.issued.ts
        for settlement in self.settlements:
            if settlement.type == "payment.received":
                paid += settlement.amount
            else:
                credited += settlement.amount
            if paid >= self.issued.total - credited:
                return max(self.issued.ts, settlement.ts)
        return None


def _deduplicate(events: Iterable[ev.Event]) -> list[ev.Event]:
    """Keep the first event of each event_id; drop rep.upserted (the directory is given)."""
    seen: set[str] = set()
    kept = []
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        if event.type == "rep.upserted":
            continue
        kept.append(event)
    return kept


def _replay_opportunities(events: Sequence[ev.Event], stages: Sequence[str]) -> dict[str, _Opportunity]:
    """Apply opportunity events in event-time order; invalid transitions are skipped (the pipeline DLQs them)."""
    index = {stage: i for i, stage in enumerate(stages)}
    opps: dict[str, _Opportunity] = {}
    for event in events:
        if event.type == "opportunity.created":
            if event.opportunity_id in opps or event.stage not in index:
                continue  # a second created, or an unconfigured stage
            opp = _Opportunity(created=event, rep=event.rep_id)
            k = index[event.stage]
            for stage in stages[: k + 1]:  # the creation stage and all earlier ones
                opp.entered.append((stage, event.ts, event.rep_id))
            for stage in stages[:k]:  # earlier ones are skipped: left at once
                opp.left[stage] = (event.ts, event.rep_id)
            opps[event.opportunity_id] = opp
        elif event.type == "opportunity.stage_changed":
            opp = opps.get(event.opportunity_id)
            if opp is None or opp.outcome is not None or event.to_stage not in index:
                continue
            current = index[opp.current_stage()]
            target = index[event.to_stage]
            if target <= current:
                continue  # backwards or to the same stage
            opp.left[stages[current]] = (event.ts, event.rep_id)
            for stage in stages[current + 1 : target + 1]:
                opp.entered.append((stage, event.ts, event.rep_id))
            for stage in stages[current + 1 : target]:  # skipped stages
                opp.left[stage] = (event.ts, event.rep_id)
            opp.rep = event.rep_id
        elif event.type in ("opportunity.won", "opportunity.lost"):
            opp = opps.get(event.opportunity_id)
            if opp is None or opp.outcome is not None:
                continue
            opp.left[opp.current_stage()] = (event.ts, event.rep_id)
            opp.outcome = event
            opp.rep = event.rep_id
    return opps


def _opportunity_facts(opp: _Opportunity, stages: Sequence[str]) -> list[_Fact]:
    facts = []
    created = opp.created
    creator = ("rep", created.rep_id)
    won = opp.outcome is not None and opp.outcome.type == "opportunity.won"
    facts.append(_Fact("touch", creator, created.ts, 0))
    facts.append(_Fact("opportunities_created", creator, created.ts, 1))
    if won:
        facts.append(_Fact("created_won", creator, created.ts, 1))

    position = {stage: i for i, stage in enumerate(stages)}
    reached = position[opp.current_stage()]
    entered_at = {}
    for stage, ts, rep in opp.entered:
        entered_at[stage] = ts
        facts.append(_Fact("touch", ("rep", rep), ts, 0))
        facts.append(_Fact("stage_entered", ("rep", rep), ts, 1, (("stage", stage),)))
        i = position[stage]
        if i + 1 < len(stages) and (won or reached >= i + 1):
            dims = (("from", stage), ("to", stages[i + 1]))
            facts.append(_Fact("stage_advanced", ("rep", rep), ts, 1, dims))
    for stage, (ts, rep) in opp.left.items():
        dims = (("stage", stage),)
        facts.append(_Fact("stage_left", ("rep", rep), ts, 1, dims))
        facts.append(_Fact("stage_days", ("rep", rep), ts, _days_between(ts, entered_at[stage]), dims))

    outcome = opp.outcome
    if outcome is not None:
        owner = ("rep", outcome.rep_id)
        facts.append(_Fact("touch", owner, outcome.ts, 0))
        if won:
            facts.append(_Fact("won", owner, outcome.ts, 1))
            facts.append(_Fact("bookings", owner, outcome.ts, outcome.amount))
            facts.append(_Fact("cycle_days", owner, outcome.ts, _days_between(outcome.ts, created.ts)))
        else:
            facts.append(_Fact("lost", owner, outcome.ts, 1))
    return facts


def _replay_invoices(events: Sequence[ev.Event]) -> dict[str, _Invoice]:
    """Invoices by id (a re-used invoice_id is ignored); settlements in event-time order."""
    invoices: dict[str, _Invoice] = {}
    for position, event in enumerate(events):
        if event.type == "invoice.issued" and event.invoice_id not in invoices:
            invoices[event.invoice_id] = _Invoice(event, position)
    for event in events:
        if event.type in ("payment.received", "credit_note.issued"):
            invoice = invoices.get(event.invoice_id)
            # Never matched, or an invoice of another customer: counts nowhere.
            if invoice is not None and invoice.issued.customer_id == event.customer_id:
                invoice.settlements.append(event)
    return invoices


def _invoice_facts(invoice: _Invoice) -> list[_Fact]:
    issued = invoice.issued
    owner = invoice.owner
    facts = [
        _Fact("touch", owner, issued.ts, 0),
        _Fact("orders", owner, issued.ts, 1),
        _Fact("invoiced", owner, issued.ts, issued.total),
        _Fact("units", owner, issued.ts, sum((line.quantity for line in issued.lines), Decimal(0))),
        _Fact("customers", owner, issued.ts, issued.customer_id),
    ]
    for line in issued.lines:
        if line.unit_cost is not None:
            facts.append(_Fact("costed_gross", owner, issued.ts, line.quantity * line.unit_price))
            facts.append(
                _Fact("costed_margin", owner, issued.ts, line.quantity * (line.unit_price - line.unit_cost))
            )
    for settlement in invoice.settlements:
        facts.append(_Fact("touch", owner, settlement.ts, 0))
        if settlement.type == "credit_note.issued":
            facts.append(_Fact("credited", owner, settlement.ts, settlement.amount))
    paid_ts = invoice.fully_paid_ts()
    if paid_ts is not None:
        facts.append(_Fact("paid_count", owner, paid_ts, 1))
        facts.append(_Fact("paid_days", owner, paid_ts, _days_between(paid_ts, issued.ts)))
    return facts


def _new_customer_facts(invoices: Iterable[_Invoice]) -> list[_Fact]:
    """One fact per customer, at its first invoice by event time (ties: first applied)."""
    first: dict[str, _Invoice] = {}
    for invoice in invoices:
        best = first.get(invoice.issued.customer_id)
        if best is None or (invoice.issued.ts, invoice.position) < (best.issued.ts, best.position):
            first[invoice.issued.customer_id] = invoice
    return [_Fact("new_customers", inv.owner, inv.issued.ts, 1) for inv in first.values()]


def _other_facts(events: Sequence[ev.Event]) -> list[_Fact]:
    facts = []
    for event in events:
        if event.type in ACTIVITY_KPIS:
            facts.append(_Fact(ACTIVITY_KPIS[event.type], ("rep", event.rep_id), event.ts, 1))
        elif event.type == "spend.recorded":
            owner = ("team", event.team_id) if event.team_id else ("global", "")
            facts.append(_Fact("spend", owner, event.ts, event.amount))
    return facts


# --- scopes --------------------------------------------------------------------------


def _team_regions(directory: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """team → region, from the reps of the directory (first region in rep_id order)."""
    regions: dict[str, str] = {}
    for rep_id in sorted(directory):
        team, region = directory[rep_id]
        regions.setdefault(team, region)
    return regions


def _scopes(owner: Owner, directory: Mapping[str, tuple[str, str]], team_regions: dict[str, str]) -> tuple:
    kind, ident = owner
    if kind == "rep":
        team, region = directory.get(ident, (UNASSIGNED, UNASSIGNED))
        return (f"rep:{ident}", f"team:{team}", f"region:{region}", "global")
    if kind == "team":
        return (f"team:{ident}", f"region:{team_regions.get(ident, UNASSIGNED)}", "global")
    return ("global",)


# --- sums and formulas ---------------------------------------------------------------------


class _Totals:
    """Σ of each (fact name, dims) over a set of facts, plus the distinct customers."""

    def __init__(self, facts: Iterable[_Fact]) -> None:
        self.sums: dict[tuple[str, tuple], Number] = defaultdict(int)
        self.customers: set[str] = set()
        self.count = 0
        for fact in facts:
            self.count += 1
            if fact.name == "customers":
                self.customers.add(fact.value)
            else:
                self.sums[(fact.name, fact.dims)] += fact.value

    def __call__(self, name: str, dims: tuple = ()) -> Number:
        return self.sums.get((name, dims), 0)

    def money(self, name: str) -> Decimal:
        return Decimal(self(name))

    def revenue(self) -> Decimal:
        return self.money("invoiced") - self.money("credited")


def _clv(t: _Totals, window_days: int, lifetime_days: int) -> Ratio:
    # basket × frequency × lifetime / length = revenue/orders × orders/customers × L/len
    # (undefined when there are no orders, i.e. no customers either)
    return _divide(t.revenue() * lifetime_days, len(t.customers) * window_days)


def _periodic_kpis(t: _Totals, stages: Sequence[str], window_days: int | None, lifetime_days: int) -> dict:
    """`window_days` is None for windows shorter than a month (they get no clv)."""
    out: dict[tuple[str, tuple], Ratio] = {}
    for name in ("calls", "emails", "meetings_booked", "demos", "prospects_contacted", "opportunities_created"):
        out[(name, ())] = _plain(t(name))
    out[("meeting_rate", ())] = _divide(t("meetings_booked"), t("calls"))
    out[("win_rate", ())] = _divide(t("won"), t("won") + t("lost"))
    out[("lead_conversion", ())] = _divide(t("created_won"), t("opportunities_created"))
    for a, b in zip(stages, stages[1:]):
        out[("stage_conversion", (("from", a), ("to", b)))] = _divide(
            t("stage_advanced", (("from", a), ("to", b))), t("stage_entered", (("stage", a),))
        )
    out[("sales_cycle_days", ())] = _divide(t("cycle_days"), t("won"))
    for stage in stages:
        dims = (("stage", stage),)
        out[("stage_duration_days", dims)] = _divide(t("stage_days", dims), t("stage_left", dims))
    out[("bookings", ())] = _plain(t.money("bookings"))
    out[("won_deals", ())] = _plain(t("won"))
    out[("average_deal_size", ())] = _divide(t.money("bookings"), t("won"))
    out[("revenue", ())] = _plain(t.revenue())
    out[("orders", ())] = _plain(t("orders"))
    out[("units_sold", ())] = _plain(t.money("units"))
    out[("average_basket", ())] = _divide(t.revenue(), t("orders"))
    out[("gross_margin", ())] = _divide(t.money("costed_margin"), t.money("costed_gross"))
    out[("new_customers", ())] = _plain(t("new_customers"))
    cac = _divide(t.money("spend"), t("new_customers"))
    out[("cac", ())] = cac
    out[("purchase_frequency", ())] = _divide(t("orders"), len(t.customers))
    if window_days is not None:
        clv = _clv(t, window_days, lifetime_days)
        out[("clv", ())] = clv
        if clv.value is None or cac.value is None:
            out[("ltv_to_cac", ())] = _UNDEFINED
        else:
            clv_exact = Fraction(clv.numerator) / Fraction(clv.denominator)
            cac_exact = Fraction(cac.numerator) / Fraction(cac.denominator)
            out[("ltv_to_cac", ())] = _divide(clv_exact, cac_exact)
    out[("days_to_pay", ())] = _divide(t("paid_days"), t("paid_count"))
    return out


def _change_kpis(t: _Totals, prev: _Totals) -> dict:
    revenue, revenue_prev = t.revenue(), prev.revenue()
    gross, gross_prev = t.money("invoiced"), prev.money("invoiced")
    units, units_prev = t.money("units"), prev.money("units")
    # price_effect = (gross/units − gross_prev/units_prev) × units
    #             = (gross·units_prev − gross_prev·units)·units / (units·units_prev)
    # volume_effect = (units − units_prev) × gross_prev/units_prev
    return {
        ("revenue_growth", ()): _divide(revenue - revenue_prev, revenue_prev),
        ("price_effect", ()): _divide((gross * units_prev - gross_prev * units) * units, units * units_prev),
        ("volume_effect", ()): _divide((units - units_prev) * gross_prev, units_prev),
    }


# --- the entry point -------------------------------------------------------------------------


def compute_reference(
    events: Iterable[ev.Event],
    *,
    directory: Mapping[str, tuple[str, str]],
    tz: str = "UTC",
    stages: Sequence[str] = DEFAULT_STAGES,
    customer_lifetime_days: int = 1095,
    now: float | None = None,
    rolling_for_idle_scopes: bool = True,
) -> dict[Key, Ratio]:
    """Every KPI of CONTRACT §4 (but objective_attainment) from `events`, judged in event-time order.

    `directory` maps rep_id → (team_id, region_id). `now` (the newest event time: rolling
    windows end on its local day, overdue is judged at it, `all` lasts until the end of its
    day) defaults to the largest `ts` of the de-duplicated events, invalid transitions
    included (the pipeline saw them too).
    """
    stages = tuple(stages)
    applied = _deduplicate(events)
    if not applied:
        return {}
    if now is None:
        now = max(event.ts for event in applied)

    # Validity is judged in event-time order, whatever the arrival order. At one instant a
    # creation comes first, then moves in stage order, then closes; then the event id.
    rank = {"opportunity.created": 0, "opportunity.stage_changed": 1}
    position = {stage: i for i, stage in enumerate(stages)}

    def in_order(event: ev.Event) -> tuple:
        stage = getattr(event, "stage", None) or getattr(event, "to_stage", None) or ""
        return (event.ts, rank.get(event.type, 2), position.get(stage, -1), event.event_id)

    in_event_time = sorted(applied, key=in_order)
    opps = _replay_opportunities(in_event_time, stages)
    invoices = _replay_invoices(in_event_time)
    facts: list[_Fact] = []
    for opp in opps.values():
        facts += _opportunity_facts(opp, stages)
    for invoice in invoices.values():
        facts += _invoice_facts(invoice)
    facts += _new_customer_facts(invoices.values())
    facts += _other_facts(applied)

    team_regions = _team_regions(directory)

    def scopes_of(owner: Owner) -> tuple:
        return _scopes(owner, directory, team_regions)

    # scope → local date → facts
    by_scope: dict[str, dict[date, list[_Fact]]] = defaultdict(lambda: defaultdict(list))
    for fact in facts:
        day = periods.local_day(fact.ts, tz)
        for scope in scopes_of(fact.owner):
            by_scope[scope][day].append(fact)

    # snapshots at `now`
    open_count: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    open_value: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for opp in opps.values():
        if opp.outcome is None:
            amount = opp.created.amount if opp.created.amount is not None else Decimal(0)
            for scope in scopes_of(("rep", opp.rep)):
                open_count[scope][opp.current_stage()] += 1
                open_value[scope][opp.current_stage()] += amount
    overdue: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices.values():
        due = invoice.issued.due_ts
        if due is not None and due < now and invoice.fully_paid_ts() is None:
            outstanding = invoice.issued.total - invoice.credited() - invoice.paid()
            for scope in scopes_of(invoice.owner):
                overdue[scope] += outstanding

    newest_day = periods.local_day(now, tz)

    def totals(scope: str, lo: date | None = None, hi: date | None = None) -> _Totals:
        """Facts of `scope` on local days lo ≤ day < hi."""
        days = by_scope.get(scope, {})
        return _Totals(
            fact
            for day, day_facts in days.items()
            if (lo is None or day >= lo) and (hi is None or day < hi)
            for fact in day_facts
        )

    result: dict[Key, Ratio] = {}

    def emit(scope: str, window: str, start: str, values: dict) -> None:
        for (kpi, dims), ratio in values.items():
            result[(kpi, scope, window, start, dims)] = ratio

    all_scopes = set(by_scope) | set(open_count) | set(overdue)
    for scope in sorted(all_scopes):
        days = by_scope.get(scope, {})
        for window in CALENDAR_WINDOWS:
            for start in sorted({periods.first_day(day, window) for day in days}):
                end = periods.first_day_after(start, window)
                current = totals(scope, start, end)
                previous = totals(scope, periods.first_day_before(start, window), start)
                window_start = periods.utc_text(periods.local_midnight(start, tz))
                length = (end - start).days if window in CLV_WINDOWS else None
                values = _periodic_kpis(current, stages, length, customer_lifetime_days)
                values.update(_change_kpis(current, previous))
                emit(scope, window, window_start, values)

        for window, n in ROLLING_WINDOWS.items():
            lo = newest_day - timedelta(days=n - 1)
            current = totals(scope, lo, newest_day + timedelta(days=1))
            if current.count or rolling_for_idle_scopes:
                length = n if window in CLV_WINDOWS else None
                emit(scope, window, "", _periodic_kpis(current, stages, length, customer_lifetime_days))

        lifetime = totals(scope)
        # `all` lasts from the scope's first invoice to the newest event time, whole days.
        invoice_days = [day for day, day_facts in days.items() if any(f.name == "orders" for f in day_facts)]
        all_days = (newest_day - min(invoice_days)).days + 1 if invoice_days else 1
        values = _periodic_kpis(lifetime, stages, all_days, customer_lifetime_days)
        values[("overdue_receivables", ())] = _plain(overdue.get(scope, Decimal(0)))
        counts = open_count.get(scope, {})
        amounts = open_value.get(scope, {})
        values[("open_opportunities", ())] = _plain(sum(counts.values()))
        values[("pipeline_value", ())] = _plain(sum(amounts.values(), Decimal(0)))
        for stage in stages:
            values[("open_opportunities", (("stage", stage),))] = _plain(counts.get(stage, 0))
            values[("pipeline_value", (("stage", stage),))] = _plain(amounts.get(stage, Decimal(0)))
        # open × win_rate × average_deal_size / sales_cycle_days, rates over 90d:
        # = open × bookings × won / ((won + lost) × cycle_days)
        r90 = totals(scope, newest_day - timedelta(days=89), newest_day + timedelta(days=1))
        won, lost = r90("won"), r90("lost")
        values[("pipeline_velocity", ())] = _divide(
            sum(counts.values()) * r90.money("bookings") * won, (won + lost) * Fraction(r90("cycle_days"))
        )
        emit(scope, "all", "", values)
    return result
