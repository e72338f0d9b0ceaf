"""The simulator's CRM activity, deals, invoices, payments and spend (a mixin of Simulator)."""

from __future__ import annotations

import math
from typing import Any

from streams.simulator.common import (
    DAY,
    _ADDONS,
    _CALL_OUTCOMES,
    _CALL_OUTCOME_CUM,
    _DISCOUNTS,
    _Invoice,
    _LINE_COUNT_CUM,
    _LOSS_REASONS,
    _LOSS_REASON_CUM,
    _MEETING_FROM_CALL,
    _OPP_FROM_MEETING,
    _P_EARLY_CLOSE,
    _P_LOSE,
    _P_SKIP,
    _P_STALL,
    _P_WIN,
    _Opp,
    _PRODUCTS,
    _PRODUCT_CUM,
    _PRODUCT_NAMES,
    _RepState,
    _SECONDS_UTC,
    _SPEND_CHANNELS,
    _money,
    _pick,
)


class _Deals:
    """What one scheduled action emits; relies on the Simulator state built in traffic.py."""

    # --- CRM activity --------------------------------------------------------------

    def _touch(self, t: int, rep: _RepState) -> None:
        r = self._rng.random() * rep.touch_w
        if r < rep.call_w and rep.contacts:
            self._call(t, rep)
        elif r < rep.call_w + rep.email_w and rep.contacts:
            contacts = rep.contacts
            contact = contacts[int(self._rng.random() * len(contacts))]
            data = {"rep_id": rep.rep.rep_id, "contact_id": contact}
            self._emit(t, "email.sent", data, rep.key)
        else:
            self._prospect(t, rep)

    def _prospect(self, t: int, rep: _RepState) -> None:
        contact = self._next_id("ct", 6)
        # A rep works a bounded book of contacts; new ones push out random old ones.
        if len(rep.contacts) < 250:
            rep.contacts.append(contact)
        else:
            rep.contacts[self._rng.randrange(250)] = contact
        data = {"rep_id": rep.rep.rep_id, "contact_id": contact}
        self._emit(t, "prospect.contacted", data, rep.key)

    def _call(self, t: int, rep: _RepState) -> None:
        rng = self._rng
        contact = rep.contacts[int(rng.random() * len(rep.contacts))]
        outcome = _pick(rng, _CALL_OUTCOMES, _CALL_OUTCOME_CUM)
        if outcome == "connected":
            duration = min(3600, max(30, round(rng.lognormvariate(math.log(240), 0.6))))
            slumping = self._slumping(rep, t) and self.scenario == "slump"
            p_meeting = _MEETING_FROM_CALL * rep.skill * (0.3 if slumping else 1.0)
            if rng.random() < p_meeting:
                self._schedule(t + 60 + int(rng.random() * 840), self._book_meeting, (rep, contact))
        elif outcome == "voicemail":
            duration = 15 + int(rng.random() * 45)
        elif outcome == "no_answer":
            duration = int(rng.random() * 30)
        else:
            duration = int(rng.random() * 20)
        data = {
            "rep_id": rep.rep.rep_id,
            "contact_id": contact,
            "duration_s": duration,
            "outcome": outcome,
        }
        self._emit(t, "call.logged", data, rep.key)

    def _book_meeting(self, t: int, arg: tuple[_RepState, str]) -> None:
        rep, contact = arg
        opp = self._open_by_contact.get(contact)
        data: dict[str, Any] = {"rep_id": rep.rep.rep_id, "contact_id": contact}
        if opp is not None:
            data["opportunity_id"] = opp.opp_id
        self._emit(t, "meeting.booked", data, opp.key if opp else rep.key)
        if opp is None and self._rng.random() < _OPP_FROM_MEETING:
            # The discovery meeting takes place within days and qualifies a deal.
            when = self._business_time(t + self._days(1, 6), rep.region)
            self._schedule(when, self._create_opportunity, (rep, contact, None))

    # --- opportunities -------------------------------------------------------------

    def _create_opportunity(self, t: int, arg: tuple[_RepState, str, int | None]) -> None:
        rep, contact, stage = arg
        if contact in self._open_by_contact:
            return  # an earlier meeting with this contact already opened a deal
        rng = self._rng
        opp = _Opp(self._next_id("o", 6), rep, contact, self._customer_for(rep))
        opp.product = _pick(rng, _PRODUCT_NAMES, _PRODUCT_CUM)
        median = _PRODUCTS[opp.product][0]
        # Expected values are round numbers, as reps type them in.
        opp.amount = max(100_000, int(round(median * rng.lognormvariate(0, 0.5), -4)))
        if stage is None:  # most deals start at the top; inbound leads come qualified
            stage = 0 if rng.random() < 0.85 or len(self.stages) == 1 else 1
        opp.stage = stage
        self._open_by_contact[contact] = opp
        data = {
            "opportunity_id": opp.opp_id,
            "rep_id": rep.rep.rep_id,
            "stage": self.stages[opp.stage],
            "account_id": opp.account_id,
            "customer_id": opp.customer_id,
            "amount": _money(opp.amount, False),
            "currency": opp.currency,
            "product": opp.product,
        }
        self._emit(t, "opportunity.created", data, opp.key)
        if opp.stage == self._meeting_stage:
            self._meeting_for(t, opp)
        self._schedule_decision(t, opp, 1.0)

    def _customer_for(self, rep: _RepState) -> tuple[str, str]:
        """A returning customer of the region (upsell) or a brand-new one."""
        pool = rep.region.customers
        if pool and self._rng.random() < 0.3:
            return self._rng.choice(pool)
        number = self._ids["customer"] = self._ids["customer"] + 1
        return f"c-{number:05d}", f"a-{number:05d}"

    def _schedule_decision(self, t: int, opp: _Opp, slowness: float) -> None:
        dwell = min(30.0, max(0.5, self._rng.lognormvariate(math.log(4.0), 0.6))) * slowness
        when = self._business_time(t + round(dwell * DAY), opp.rep.region)
        self._schedule(when, self._decide, opp)

    def _decide(self, t: int, opp: _Opp) -> None:
        """The deal's next step: advance (maybe skipping), stall, win or lose."""
        rng = self._rng
        slump = self._slumping(opp.rep, t)
        last = len(self.stages) - 1
        if opp.stage == last or (opp.stage == last - 1 and rng.random() < _P_EARLY_CLOSE):
            # A slump dents closing; a collapse nearly stops it.
            p_win = _P_WIN * opp.rep.skill * ((0.02 if self.scenario == "collapse" else 0.2) if slump else 1.0)
            if rng.random() < p_win:
                self._win(t, opp)
            else:
                self._lose(t, opp, None)
            return
        r = rng.random()
        p_lose = _P_LOSE * (3.0 if slump else 1.0)
        if r < p_lose:
            self._lose(t, opp, None)
        elif r < p_lose + _P_STALL:
            opp.stalls += 1
            if opp.stalls > 2:
                self._lose(t, opp, "no_decision")  # went quiet for too long
            else:
                self._schedule_decision(t, opp, 2.5)
        else:
            jump = 2 if rng.random() < _P_SKIP and opp.stage + 2 <= last else 1
            self._enter_stage(t, opp, opp.stage + jump)
            self._schedule_decision(t, opp, 1.0)

    def _enter_stage(self, t: int, opp: _Opp, to: int) -> None:
        if opp.stage == self._demo_stage:
            # Leaving the demo stage forward means the demo took place.
            demo = {"rep_id": opp.rep.rep.rep_id, "opportunity_id": opp.opp_id}
            self._emit(t, "demo.completed", demo, opp.key)
        if to == self._meeting_stage:
            self._meeting_for(t, opp)
        data = {
            "opportunity_id": opp.opp_id,
            "rep_id": opp.rep.rep.rep_id,
            "from_stage": self.stages[opp.stage],
            "to_stage": self.stages[to],
        }
        opp.stage = to
        self._emit(t, "opportunity.stage_changed", data, opp.key)

    def _meeting_for(self, t: int, opp: _Opp) -> None:
        data = {
            "rep_id": opp.rep.rep.rep_id,
            "opportunity_id": opp.opp_id,
            "contact_id": opp.contact_id,
        }
        self._emit(t, "meeting.booked", data, opp.key)

    def _close(self, opp: _Opp) -> None:
        opp.closed = True
        if self._open_by_contact.get(opp.contact_id) is opp:
            del self._open_by_contact[opp.contact_id]

    def _win(self, t: int, opp: _Opp) -> None:
        self._close(opp)
        # Deals close at or a little under the expected value (discounting).
        won = round(opp.amount * self._rng.uniform(0.8, 1.02))
        data = {
            "opportunity_id": opp.opp_id,
            "rep_id": opp.rep.rep.rep_id,
            "amount": _money(won, False),
            "currency": opp.currency,
        }
        self._emit(t, "opportunity.won", data, opp.key)
        customer = (opp.customer_id, opp.account_id)
        if customer not in opp.rep.region.customers:
            opp.rep.region.customers.append(customer)
        when = self._business_time(t + self._days(0.5, 7), opp.rep.region)
        self._schedule(when, self._issue_invoice, (opp, won))

    def _lose(self, t: int, opp: _Opp, reason: str | None) -> None:
        self._close(opp)
        reason = reason or _pick(self._rng, _LOSS_REASONS, _LOSS_REASON_CUM)
        data = {"opportunity_id": opp.opp_id, "rep_id": opp.rep.rep.rep_id, "reason": reason}
        self._emit(t, "opportunity.lost", data, opp.key)

    # --- billing -------------------------------------------------------------------

    def _issue_invoice(self, t: int, arg: tuple[_Opp, int]) -> None:
        opp, won = arg
        rng = self._rng
        lines, total = self._invoice_lines(opp.product, won)
        invoice = _Invoice(self._next_id("inv", 6), opp.customer_id, opp.currency, opp.rep)
        data: dict[str, Any] = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "currency": invoice.currency,
            "lines": lines,
            "due_at": self._format(t + 30 * DAY, _SECONDS_UTC),
        }
        if rng.random() < 0.95:  # a few invoices are raised without the deal owner
            data["rep_id"] = opp.rep.rep.rep_id
        if rng.random() < 0.6:
            data["total"] = _money(total, True)
        self._emit(t, "invoice.issued", data, invoice.key)
        self._plan_settlement(t, invoice, total)

    def _invoice_lines(self, product: str, amount: int) -> tuple[list[dict[str, Any]], int]:
        """1–5 lines whose total lands near `amount`: the licence first, then add-ons."""
        rng = self._rng
        count = _pick(rng, (1, 2, 3, 4, 5), _LINE_COUNT_CUM)
        _, sku, list_price, cost_ratio = _PRODUCTS[product]
        items = [(sku, list_price, cost_ratio), *rng.sample(_ADDONS, count - 1)]
        main_share = 1.0 if count == 1 else rng.uniform(0.55, 0.85)
        shares = [main_share] + [(1.0 - main_share) / max(1, count - 1)] * (count - 1)
        as_string = rng.random() < 0.5  # exporters disagree on numbers vs strings
        lines, total = [], 0
        for (sku, price, ratio), share in zip(items, shares):
            unit = round(price * (1.0 - rng.choice(_DISCOUNTS)))
            quantity = max(1, round(amount * share / unit))
            line: dict[str, Any] = {
                "sku": sku,
                "quantity": quantity,
                "unit_price": _money(unit, as_string),
            }
            if rng.random() < 0.9:  # not every line carries a cost
                line["unit_cost"] = _money(round(unit * ratio * rng.uniform(0.9, 1.1)), as_string)
            lines.append(line)
            total += quantity * unit
        return lines, total

    def _plan_settlement(self, t: int, invoice: _Invoice, total: int) -> None:
        """Schedule the credit note and payments this invoice will see (if any)."""
        rng = self._rng
        region = invoice.rep.region
        first = 0
        if rng.random() < 0.06:
            credit = max(1, round(total * rng.uniform(0.05, 0.25)))
            credit_delay = self._days(1, 10)
            when = self._business_time(t + credit_delay, region)
            self._schedule(when, self._credit_note, (invoice, credit))
            total -= credit
            first = credit_delay + DAY  # the customer pays the corrected amount, after
        r = rng.random()
        if r < 0.68:  # on time
            self._pay(t + first + self._days(3, 29), invoice, total)
        elif r < 0.83:  # late
            self._pay(t + first + self._days(32, 90), invoice, total)
        elif r < 0.93:  # partial, the rest later or never
            part = max(1, min(total - 1, round(total * rng.uniform(0.3, 0.7))))
            self._pay(t + first + self._days(5, 29), invoice, part)
            if rng.random() < 0.6:
                self._pay(t + first + self._days(35, 100), invoice, total - part)
        # else: never paid, it will show in overdue receivables

    def _pay(self, when: int, invoice: _Invoice, amount: int) -> None:
        if amount > 0:
            at = self._business_time(when, invoice.rep.region)
            self._schedule(at, self._payment, (invoice, amount))

    def _payment(self, t: int, arg: tuple[_Invoice, int]) -> None:
        invoice, amount = arg
        data = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "amount": _money(amount, False),
            "currency": invoice.currency,
        }
        self._emit(t, "payment.received", data, invoice.key)

    def _credit_note(self, t: int, arg: tuple[_Invoice, int]) -> None:
        invoice, amount = arg
        data = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "amount": _money(amount, True),
            "currency": invoice.currency,
        }
        self._emit(t, "credit_note.issued", data, invoice.key)

    def _spend(self, t: int, _: None) -> None:
        rng = self._rng
        category = "marketing" if rng.random() < 0.6 else "sales"
        team_id = rng.choice(tuple(self._team_currency)) if rng.random() < 0.9 else None
        currency = self._team_currency[team_id] if team_id else self.currencies[0]
        median = 250_000 if category == "marketing" else 80_000
        amount = max(1_000, round(median * rng.lognormvariate(0, 0.7)))
        data: dict[str, Any] = {
            "amount": _money(amount, False),
            "currency": currency,
            "category": category,
            "channel": rng.choice(_SPEND_CHANNELS[category]),
        }
        if team_id:  # brand campaigns carry no team and count globally only
            data["team_id"] = team_id
        self._emit(t, "spend.recorded", data, team_id.encode() if team_id else None)
