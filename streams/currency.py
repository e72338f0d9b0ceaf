"""Exchange rates into the reporting currency, in Decimal arithmetic with a fixed context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Context, Decimal, InvalidOperation, ROUND_HALF_EVEN
from types import MappingProxyType

from kpi_state.errors import InvalidEvent

# Value of one unit of each currency in EUR. These are illustrative DEFAULTS so the
# pipeline runs out of the box, not market data: a deployment passes its own rates.
DEFAULT_RATES_IN_EUR: Mapping[str, Decimal] = MappingProxyType(
    {
        "EUR": Decimal("1"),
        "USD": Decimal("0.92"),
        "GBP": Decimal("1.17"),
    }
)

_CODE = re.compile(r"[A-Z]{3}")
_ONE = Decimal(1)
# A fixed context, so results never depend on whatever the thread's decimal context is;
# 34 significant digits (IEEE decimal128) is far more than any amount carries.
CONVERSION_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)

RateValue = Decimal | str | int


def is_currency_code(code: object) -> bool:
    """Three upper-case ASCII letters, the ISO 4217 shape."""
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


class Rates:
    """Rates into one reporting currency: `to_reporting(amount, "USD")` → amount in it.

    `overrides` maps a currency code to how many units of the reporting currency one
    unit of that currency is worth. It is applied over the defaults, which are
    re-expressed in the reporting currency when that currency has a default rate.
    """

    def __init__(
        self,
        reporting_currency: str = "EUR",
        overrides: Mapping[str, RateValue] | None = None,
    ) -> None:
        if not is_currency_code(reporting_currency):
            raise ValueError("reporting currency must be three upper-case letters, e.g. EUR")
        self._reporting = reporting_currency
        table = _defaults_in(reporting_currency)
        for code, value in (overrides or {}).items():
            if not is_currency_code(code):
                raise ValueError(f"currency code {code!r} is not three upper-case letters")
            table[code] = _parse_rate(code, value)
        if table[reporting_currency] != _ONE:
            raise ValueError(f"the rate of the reporting currency {reporting_currency} must be 1")
        self._rates: Mapping[str, Decimal] = MappingProxyType(table)

    @property
    def reporting_currency(self) -> str:
        return self._reporting

    @property
    def rates(self) -> Mapping[str, Decimal]:
        """Every configured currency → units of the reporting currency per unit (read-only)."""
        return self._rates

    def rate(self, currency: str) -> Decimal:
        """Units of the reporting currency per unit of `currency`; InvalidEvent if none."""
        rate = self._rates.get(currency)
        if rate is None:
            # The code's shape is only looked at on a miss: configured codes are valid.
            if not is_currency_code(currency):
                raise InvalidEvent("bad_value", "currency is not three upper-case letters")
            raise InvalidEvent("unknown_currency", "no exchange rate configured for the currency")
        return rate

    def to_reporting(self, amount: Decimal, currency: str) -> Decimal:
        """`amount` of `currency` in the reporting currency, rounded to 34 significant digits."""
        return CONVERSION_CONTEXT.multiply(amount, self.rate(currency))

    def __repr__(self) -> str:
        return f"Rates({self._reporting!r}, {dict(self._rates)!r})"


def _defaults_in(reporting: str) -> dict[str, Decimal]:
    base = DEFAULT_RATES_IN_EUR.get(reporting)
    if base is None:
        # No default for the reporting currency, so no cross rates: only overrides apply.
        return {reporting: _ONE}
    return {
        code: CONVERSION_CONTEXT.divide(in_eur, base)
        for code, in_eur in DEFAULT_RATES_IN_EUR.items()
    }


def _parse_rate(code: str, value: RateValue) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, str, int)):
        # Floats are refused: 0.92 as a float is not 0.92, and rates must be exact.
        raise ValueError(f"rate for {code} must be a Decimal, a decimal string or an int")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"rate for {code} is not a decimal number") from None
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"rate for {code} must be a positive finite number")
    return rate
