"""Malformed-record injection: BAD_KINDS and the builders of each kind (a mixin of Simulator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streams.simulator.common import (
    OVERSIZE_BYTES,
    _BILLING_TYPES,
    _MONEY_TYPES,
    _REQUIRED_DATA,
    _Row,
    _SOURCES,
    _encode,
    _money,
)

if TYPE_CHECKING:
    from streams.simulator.traffic import Simulator


# Each kind of malformed record, and the DLQ reason code (contract §3) it should earn.
BAD_KINDS: dict[str, str] = {
    "not_json": "not_json",
    "truncated": "not_json",
    "not_object": "not_object",
    "oversized": "too_large",
    "missing_field": "missing_field",
    "wrong_type": "bad_type",
    "unknown_type": "unknown_type",
    "bad_timestamp": "bad_value",
    "out_of_range": "bad_value",
    "negative_amount": "bad_value",
    "unknown_currency": "unknown_currency",
    "unknown_stage": "unknown_stage",
    "inconsistent_total": "inconsistent_total",
}


class _Malformed:
    """Builds malformed records from the Simulator's own bad-record RNG."""

    # --- malformed records ---------------------------------------------------------

    def _bad_record(self) -> _Row:
        """A malformed record of a random kind (drawn from its own RNG, see __init__)."""
        kind = self._bad_rng.choice(_BAD_KIND_NAMES)
        self.bad_counts[kind] += 1
        number = sum(self.bad_counts.values())
        etype = self._bad_type_for(kind)
        data, key = self._bad_data(etype, number)
        # Stamped like the good record it precedes, so event time stays ordered.
        t = self._pending[0][3]
        env = self._envelope(t, etype, data, f"{self._run_id}-bad-{number:07x}")
        value = _CORRUPTORS[kind](self, env)
        return ("billing" if etype in _BILLING_TYPES else "crm", key, value, t, kind, False)

    def _bad_type_for(self, kind: str) -> str:
        """An event type the corruption applies to (a stage needs an opportunity...)."""
        if kind in ("negative_amount", "unknown_currency"):
            return self._bad_rng.choice(_MONEY_TYPES)
        if kind == "unknown_stage":
            return self._bad_rng.choice(("opportunity.created", "opportunity.stage_changed"))
        if kind == "inconsistent_total":
            return "invoice.issued"
        return self._bad_rng.choice(_EVENT_TYPES)

    def _bad_data(self, etype: str, number: int) -> tuple[dict[str, Any], bytes | None]:
        """Well-formed data with fresh `x` ids, so no live entity is touched, and its key."""
        rng = self._bad_rng
        rep = rng.choice(self._rep_list)
        rep_id = rep.rep.rep_id
        amount = _money(rng.randrange(10_000, 5_000_000), False)
        opp_id, customer_id = f"o-x{number:06d}", f"c-x{number:06d}"
        if etype in _REP_ACTIVITY_TYPES:
            data: dict[str, Any] = {"rep_id": rep_id, "contact_id": f"ct-x{number:06d}"}
            if etype == "call.logged":
                data.update(duration_s=rng.randrange(30, 900), outcome="connected")
            return data, rep.key
        if etype in _OPPORTUNITY_TYPES:
            data = {"opportunity_id": opp_id, "rep_id": rep_id}
            if etype == "opportunity.created":
                data.update(stage=self.stages[0], customer_id=customer_id)
                data.update(amount=amount, currency=rep.currency)
            elif etype == "opportunity.stage_changed":
                data.update(from_stage=self.stages[0], to_stage=self.stages[-1])
            elif etype == "opportunity.won":
                data.update(amount=amount, currency=rep.currency)
            return data, opp_id.encode()
        if etype == "spend.recorded":
            team = rep.rep.team_id
            data = {"amount": amount, "currency": rep.currency, "category": "sales"}
            data["team_id"] = team
            return data, team.encode()
        data = {"invoice_id": f"inv-x{number:06d}", "customer_id": customer_id}
        data["currency"] = rep.currency
        if etype == "invoice.issued":
            quantity, unit = rng.randrange(1, 20), rng.randrange(1_000, 200_000)
            line = {"sku": "LIC-PRO", "quantity": quantity, "unit_price": _money(unit, True)}
            data.update(rep_id=rep_id, lines=[line], total=_money(quantity * unit, True))
        else:  # payment.received, credit_note.issued
            data["amount"] = amount
        return data, customer_id.encode()


_EVENT_TYPES = tuple(_SOURCES)
_REP_ACTIVITY_TYPES = frozenset(("call.logged", "email.sent", "prospect.contacted"))
_OPPORTUNITY_TYPES = frozenset(
    (
        "opportunity.created", "opportunity.stage_changed", "opportunity.won",
        "opportunity.lost", "meeting.booked", "demo.completed",
    )
)  # fmt: skip
_BAD_KIND_NAMES = tuple(BAD_KINDS)


# ----------------------------------------------------------------------------------
# Corruptors: each turns a well-formed envelope into the bytes of one bad kind
# ----------------------------------------------------------------------------------


def _not_json(sim: Simulator, env: dict[str, Any]) -> bytes:
    variants = (
        b"\x00\x01\x02\xff\xfe binary",
        f"{env['type']},{env['occurred_at']},{env['event_id']}".encode(),
        repr(env).encode(),  # Python's repr: single quotes, not JSON
        b"<event><type>call.logged</type></event>",
        b"",
    )
    return sim._bad_rng.choice(variants)


def _truncated(sim: Simulator, env: dict[str, Any]) -> bytes:
    raw = _encode(env)
    # Any proper prefix of a JSON object is invalid: the closing brace is missing.
    return raw[: sim._bad_rng.randrange(1, len(raw) - 1)]


def _not_object(sim: Simulator, env: dict[str, Any]) -> bytes:
    return _encode(sim._bad_rng.choice(([env], env["event_id"], 42, None, [])))


def _oversized(sim: Simulator, env: dict[str, Any]) -> bytes:
    size = OVERSIZE_BYTES + sim._bad_rng.randrange(100, 8_000)
    env["data"]["notes"] = "lorem ipsum " * (size // 12)
    return _encode(env)


def _missing_field(sim: Simulator, env: dict[str, Any]) -> bytes:
    required = [("", name) for name in ("event_id", "type", "occurred_at")]
    required += [("data", name) for name in _REQUIRED_DATA[env["type"]]]
    where, name = sim._bad_rng.choice(required)
    del (env["data"] if where else env)[name]
    return _encode(env)


def _wrong_type(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    choices: list[Callable[[], None]] = [
        lambda: env.__setitem__("data", [data]),
        lambda: env.__setitem__("event_id", 123456),
        lambda: env.__setitem__("occurred_at", 1_700_000_000),
    ]
    if "rep_id" in data:
        choices.append(lambda: data.__setitem__("rep_id", 17))
    if "lines" in data:
        choices.append(lambda: data.__setitem__("lines", data["lines"][0]))
    if "duration_s" in data:
        choices.append(lambda: data.__setitem__("duration_s", [240]))
    sim._bad_rng.choice(choices)()
    return _encode(env)


def _unknown_type(sim: Simulator, env: dict[str, Any]) -> bytes:
    env["type"] = sim._bad_rng.choice(
        ("call.deleted", "opportunity.reopened", "invoice.voided", "Call.Logged")
    )
    return _encode(env)


def _bad_timestamp(sim: Simulator, env: dict[str, Any]) -> bytes:
    at = env["occurred_at"]
    env["occurred_at"] = sim._bad_rng.choice(
        (
            "yesterday",
            "2026-02-30T10:00:00Z",  # no such day
            at.replace("Z", "").replace("+00:00", ""),  # no offset
            at[:10],  # a date only
            "28/11/2026 09:15",
        )
    )
    return _encode(env)


def _out_of_range(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    choices: list[Callable[[], None]] = [
        lambda: env.__setitem__("event_id", ""),
        lambda: env.__setitem__("event_id", "e" * 129),
    ]
    if "duration_s" in data:
        choices.append(lambda: data.__setitem__("duration_s", -sim._bad_rng.randint(1, 600)))
    if "lines" in data:
        choices.append(lambda: _zero_quantity(data))
    if env["type"] in ("payment.received", "credit_note.issued", "spend.recorded"):
        choices.append(lambda: data.__setitem__("amount", 0))
    sim._bad_rng.choice(choices)()
    return _encode(env)


def _zero_quantity(data: dict[str, Any]) -> None:
    data["lines"][0]["quantity"] = 0
    data.pop("total", None)  # keep the total from being the first thing wrong


def _negative_amount(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    if "lines" in data:
        line = data["lines"][0]
        line["unit_price"] = "-" + str(line["unit_price"]).lstrip("-")
        data.pop("total", None)
    else:
        data["amount"] = -abs(float(data["amount"]))
    return _encode(env)


def _unknown_currency(sim: Simulator, env: dict[str, Any]) -> bytes:
    # XTS is ISO 4217's code for testing: well-formed, yet never given a rate.
    env["data"]["currency"] = "XTS" if "XTS" not in sim.currencies else "XXX"
    return _encode(env)


def _unknown_stage(sim: Simulator, env: dict[str, Any]) -> bytes:
    field = "stage" if "stage" in env["data"] else "to_stage"
    names = ("discovery", "closed_won", "Qualified", "evaluation ")
    candidates = [name for name in names if name not in sim.stages]
    env["data"][field] = sim._bad_rng.choice(candidates)
    return _encode(env)


def _inconsistent_total(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    line = data["lines"][0]
    cents = line["quantity"] * round(float(line["unit_price"]) * 100)
    delta = sim._bad_rng.randint(1, 5_000)
    # Off by a little, either way, as a hand-edited or badly rounded total would be.
    wrong = cents - delta if sim._bad_rng.random() < 0.5 and cents > delta else cents + delta
    data["total"] = _money(wrong, True)
    return _encode(env)


_CORRUPTORS: dict[str, Callable[[Simulator, dict[str, Any]], bytes]] = {
    "not_json": _not_json,
    "truncated": _truncated,
    "not_object": _not_object,
    "oversized": _oversized,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_type": _unknown_type,
    "bad_timestamp": _bad_timestamp,
    "out_of_range": _out_of_range,
    "negative_amount": _negative_amount,
    "unknown_currency": _unknown_currency,
    "unknown_stage": _unknown_stage,
    "inconsistent_total": _inconsistent_total,
}
