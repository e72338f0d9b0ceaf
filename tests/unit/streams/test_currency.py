"""Rates: defaults, cross rates, overrides, exact Decimal conversion and its errors."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from kpi_state.errors import InvalidEvent
from streams.currency import Rates


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("100"), "EUR", Decimal("100")),
        (Decimal("100"), "USD", Decimal("92")),
        (Decimal("100"), "GBP", Decimal("117")),
        (Decimal("0.1"), "USD", Decimal("0.092")),
        (Decimal("999999999999.99"), "USD", Decimal("919999999999.9908")),
        (Decimal("0"), "GBP", Decimal("0")),
    ],
)
def test_default_rates_convert_exactly_into_eur(
    amount: Decimal, currency: str, expected: Decimal
) -> None:
    assert Rates().to_reporting(amount, currency) == expected


def test_defaults_are_re_expressed_for_another_reporting_currency() -> None:
    rates = Rates("USD")
    assert rates.rate("USD") == 1
    assert rates.to_reporting(Decimal("0.92"), "EUR") == 1
    assert rates.to_reporting(Decimal("92"), "GBP") == Decimal("117")


@pytest.mark.parametrize(
    ("overrides", "currency", "expected"),
    [
        ({"USD": "0.9"}, "USD", Decimal("90")),
        ({"USD": Decimal("0.95")}, "USD", Decimal("95")),
        ({"JPY": "0.0061"}, "JPY", Decimal("0.61")),
        ({"CHF": 1}, "CHF", Decimal("100")),
        ({"EUR": "1.000"}, "EUR", Decimal("100")),
    ],
)
def test_overrides_replace_or_add_rates(
    overrides: dict[str, object], currency: str, expected: Decimal
) -> None:
    rates = Rates("EUR", overrides)  # type: ignore[arg-type]
    assert rates.to_reporting(Decimal("100"), currency) == expected


def test_overrides_keep_the_other_defaults() -> None:
    rates = Rates("EUR", {"JPY": "0.0061"})
    assert set(rates.rates) == {"EUR", "USD", "GBP", "JPY"}
    assert rates.rate("GBP") == Decimal("1.17")


def test_reporting_currency_without_defaults_only_knows_itself_and_overrides() -> None:
    rates = Rates("JPY", {"USD": "150"})
    assert rates.to_reporting(Decimal("2"), "USD") == Decimal("300")
    assert rates.to_reporting(Decimal("5"), "JPY") == Decimal("5")
    with pytest.raises(InvalidEvent) as err:
        rates.to_reporting(Decimal("1"), "EUR")
    assert err.value.reason == "unknown_currency"


@pytest.mark.parametrize(
    ("currency", "reason"),
    [
        ("XYZ", "unknown_currency"),
        ("JPY", "unknown_currency"),
        ("usd", "bad_value"),
        ("US", "bad_value"),
        ("EURO", "bad_value"),
        ("", "bad_value"),
        ("U$D", "bad_value"),
    ],
)
def test_unconvertible_currency_is_rejected_without_echoing_it(currency: str, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        Rates().to_reporting(Decimal("1"), currency)
    assert err.value.reason == reason
    if currency:
        assert currency not in err.value.detail


@pytest.mark.parametrize(
    ("reporting", "overrides"),
    [
        ("eur", None),
        ("EURO", None),
        ("EUR", {"usd": "1"}),
        ("EUR", {"USD": "0"}),
        ("EUR", {"USD": "-1"}),
        ("EUR", {"USD": "NaN"}),
        ("EUR", {"USD": "Infinity"}),
        ("EUR", {"USD": "abc"}),
        ("EUR", {"USD": 0.92}),
        ("EUR", {"USD": True}),
        ("EUR", {"EUR": "2"}),
        ("USD", {"USD": "0.5"}),
    ],
)
def test_bad_configuration_is_refused(reporting: str, overrides: dict[str, object] | None) -> None:
    with pytest.raises(ValueError):
        Rates(reporting, overrides)  # type: ignore[arg-type]


def test_conversion_ignores_the_callers_decimal_context() -> None:
    rates = Rates()
    with localcontext() as ctx:
        ctx.prec = 3
        assert rates.to_reporting(Decimal("123456.78"), "USD") == Decimal("113580.2376")


def test_rates_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        Rates().rates["USD"] = Decimal("2")  # type: ignore[index]
