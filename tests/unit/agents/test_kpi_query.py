"""What /kpis and `kpis` accept, and how a refusal lists what exists."""

from datetime import date

import pytest

from agents.kpi_query import QueryError, parse_query


def test_empty_values_mean_any():
    query = parse_query({"scope": "", "window": "", "kpi": "", "start": ""})
    assert (query.scope, query.window, query.kpi, query.start) == (None, None, None, None)


def test_good_values_pass():
    query = parse_query({"scope": "team:t-emea-1", "window": "month", "kpi": "win_rate", "start": "2026-11-01"})
    assert query.scope == "team:t-emea-1" and query.start == date(2026, 11, 1)


@pytest.mark.parametrize(
    ("params", "parameter", "says", "accepted"),
    [
        ({"kpi": "winrate"}, "kpi", "did you mean win_rate?", "sales_cycle_days"),
        ({"kpi": "sales_cycle"}, "kpi", "did you mean sales_cycle_days?", "win_rate"),
        ({"window": "fortnight"}, "window", "windows: day, week, month, quarter, year, 7d, 30d, 90d, all", "all"),
        ({"scope": "globl"}, "scope", "did you mean global?", "rep:ID"),
        ({"scope": "person:r-1"}, "scope", "global, rep:ID, team:ID or region:ID", "team:ID"),
        ({"scope": "rep:"}, "scope", "needs an id", "rep:ID"),
        ({"scope": "rep: r-1"}, "scope", "needs an id", "rep:ID"),
        ({"start": "last week"}, "start", "2026-11-01", None),
        ({"window": "30d", "start": "2026-10-15"}, "start", "30d has only its current record", "month"),
        ({"window": "all", "start": "2026-10-15"}, "start", "start picks a calendar window", "day"),
        ({"colour": "red"}, "colour", "parameters: scope, window, kpi, start", "scope"),
    ],
)
def test_refusals_name_the_parameter_and_what_exists(params, parameter, says, accepted):
    with pytest.raises(QueryError) as info:
        parse_query(params)
    assert info.value.parameter == parameter
    assert says in str(info.value)
    if accepted is not None:
        assert accepted in info.value.accepted
