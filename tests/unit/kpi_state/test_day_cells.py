"""Day cells (kpi_state.day_cells): contributions → (scope, day) cells, replacement, dirty cells and emptied ones."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from kpi_state.contributions import Contribution
from kpi_state.day_cells import CellUpdate, DayCells, _items, _pack, as_decimal, component_key
from kpi_state.directory import RepDirectory

MON, TUE = "2026-03-02", "2026-03-03"


def cells() -> DayCells:
    directory = RepDirectory()
    directory.place("a", "t1", "north")
    directory.place("b", "t1", "north")
    return DayCells(directory)


def created(rep: str, day: str) -> Contribution:
    return Contribution("opportunities_created", ("rep", rep), day)


def test_a_rep_contribution_counts_in_its_four_scopes() -> None:
    c = cells()
    c.apply([created("a", MON)])
    assert c.take_dirty() == {
        (scope, MON): CellUpdate({"opportunities_created": D(1)}, {})
        for scope in ("rep:a", "team:t1", "region:north", "global")
    }
    assert c.take_dirty() == {}  # nothing changed since


def test_team_and_global_attributions() -> None:
    c = cells()
    c.apply([Contribution("spend", ("team", "t1"), MON, (), D("250.50")),
             Contribution("spend", ("global", ""), MON, (), D(100))])
    dirty = c.take_dirty()
    # The team's region comes from its reps; global gets both amounts.
    assert dirty[("team:t1", MON)].values == {"spend": D("250.50")}
    assert dirty[("region:north", MON)].values == {"spend": D("250.50")}
    assert dirty[("global", MON)].values == {"spend": D("350.50")}
    assert len(dirty) == 3


def test_an_unplaced_rep_counts_as_unassigned() -> None:
    c = cells()
    c.apply([created("zed", MON)])
    assert set(c.take_dirty()) == {("rep:zed", MON), ("team:unassigned", MON), ("region:unassigned", MON),
                                   ("global", MON)}


def test_replace_swaps_an_entitys_contributions_and_empties_the_old_cells() -> None:
    c = cells()
    c.replace(b"opp:1", [created("a", MON)])
    c.take_dirty()
    # The same opportunity, now created on Tuesday (its contributions are absolute).
    c.replace(b"opp:1", [created("a", TUE)])
    dirty = c.take_dirty()
    assert dirty[("rep:a", MON)] == CellUpdate({}, {})  # emptied: the rollup must clear it
    assert dirty[("rep:a", TUE)] == CellUpdate({"opportunities_created": D(1)}, {})
    assert ("rep:a", MON) not in c.values  # emptied cells are forgotten once sent


def test_replace_with_the_same_contributions_changes_nothing() -> None:
    c = cells()
    c.replace(b"opp:1", [created("a", MON)])
    c.take_dirty()
    c.replace(b"opp:1", [created("a", MON)])
    assert c.take_dirty() == {}


def test_two_entities_share_a_cell() -> None:
    c = cells()
    c.replace(b"opp:1", [created("a", MON)])
    c.replace(b"opp:2", [created("a", MON)])
    assert c.take_dirty()[("rep:a", MON)].values == {"opportunities_created": D(2)}
    c.replace(b"opp:2", [])
    assert c.take_dirty()[("rep:a", MON)].values == {"opportunities_created": D(1)}
    assert b"opp:2" not in c.by_entity


def test_distinct_members_are_counted_per_id() -> None:
    c = cells()
    invoice = Contribution("customers_invoiced", ("rep", "a"), MON, (), 1, "c1")
    c.replace(b"cust:c1", [invoice])
    c.replace(b"cust:c1-dup", [invoice])  # the same id twice in the cell: one member
    assert c.take_dirty()[("rep:a", MON)] == CellUpdate({}, {"customers_invoiced": ["c1"]})
    c.replace(b"cust:c1", [])
    assert c.take_dirty()[("rep:a", MON)].members == {"customers_invoiced": ["c1"]}  # still one left
    c.replace(b"cust:c1-dup", [])
    assert c.take_dirty()[("rep:a", MON)] == CellUpdate({}, {})


def test_dims_are_part_of_the_component_key() -> None:
    assert component_key("stage_entered", (("stage", "demo"),)) == "stage_entered|stage=demo"
    assert component_key("stage_advanced", (("from", "demo"), ("to", "proposal"))) == \
        "stage_advanced|from=demo|to=proposal"
    c = cells()
    c.apply([Contribution("stage_entered", ("rep", "a"), MON, (("stage", "demo"),))])
    assert c.take_dirty()[("rep:a", MON)].values == {"stage_entered|stage=demo": D(1)}


def test_values_add_exactly() -> None:
    assert as_decimal(0.1) == D("0.1")  # a float by its shortest text, not its binary value
    assert as_decimal(3) == D(3)
    c = cells()
    c.apply([Contribution("bookings", ("rep", "a"), MON, (), 0.1), Contribution("bookings", ("rep", "a"), MON, (), 0.2)])
    assert c.take_dirty()[("rep:a", MON)].values == {"bookings": D("0.3")}


def test_clear_marks_every_cell_that_held_something() -> None:
    c = cells()
    c.replace(b"opp:1", [created("a", MON)])
    c.take_dirty()
    c.clear()
    dirty = c.take_dirty()
    assert dirty[("rep:a", MON)] == CellUpdate({}, {})
    assert len(dirty) == 4


def test_a_past_days_cell_is_packed_once_taken_and_keeps_counting_exactly() -> None:
    c = cells()
    c.apply([created("a", MON), Contribution("bookings", ("rep", "a"), MON, (), D("10.50")),
             Contribution("won", ("rep", "a"), MON, (), 1)])
    c.take_dirty()
    c.apply([created("b", TUE)])  # Tuesday is now the newest day: Monday's cells get packed
    c.take_dirty()
    monday = c.values[("rep:a", MON)]
    assert type(monday) is bytes  # no dict nor Decimal objects per past cell: most of an engine's memory
    assert type(c.values[("rep:b", TUE)]) is dict
    # Monday changes again (a late win, a withdrawal): the totals go on from where they were,
    # and a component back at zero leaves the cell.
    c.apply([Contribution("bookings", ("rep", "a"), MON, (), D("2.25")), Contribution("won", ("rep", "a"), MON, (), -1)])
    dirty = c.take_dirty()
    assert dirty[("rep:a", MON)] == CellUpdate({"opportunities_created": D(1), "bookings": D("12.75")}, {})
    assert dirty[("team:t1", MON)].values == {"opportunities_created": D(1), "bookings": D("12.75")}
    # Emptied entirely, a packed cell still goes out empty and is dropped.
    c.apply([created("a", MON), Contribution("bookings", ("rep", "a"), MON, (), D("12.75"))], -1)
    assert c.take_dirty()[("rep:a", MON)] == CellUpdate({}, {})
    assert ("rep:a", MON) not in c.values


def test_apply_change_counts_as_the_old_contributions_out_and_the_new_in() -> None:
    staged = Contribution("stage_entered", ("rep", "a"), MON, (("stage", "demo"),))
    bookings = Contribution("bookings", ("rep", "a"), TUE, (), D("120.50"))
    before = [created("a", MON), staged, staged]
    after = [created("a", MON), staged, bookings]
    by_hand, by_change = cells(), cells()
    for c in (by_hand, by_change):
        c.apply(before)
        c.take_dirty()
    by_hand.apply(before, -1)
    by_hand.apply(after, +1)
    by_change.apply_change(before, after)
    assert by_change.take_dirty() == by_hand.take_dirty()
    assert by_change.take_dirty() == {}


def test_apply_change_leaves_the_cells_of_unchanged_contributions_alone() -> None:
    c = cells()
    kept = [created("a", MON)]
    c.apply(kept)
    c.take_dirty()
    c.apply_change(kept, kept + [Contribution("bookings", ("rep", "a"), TUE, (), D("99"))])
    assert set(c.take_dirty()) == {(scope, TUE) for scope in ("rep:a", "team:t1", "region:north", "global")}
    assert c.take_dirty() == {}


def test_counted_events_reach_the_same_cells_as_applied_contributions() -> None:
    # `count` (activity events) adds to its cells only when they are read or taken; mixed
    # with contributions applied at once, the cells must end up as if all were applied.
    counted, applied = cells(), cells()
    steps = [("calls", "a", MON), ("calls", "b", MON), ("emails", "a", TUE), ("calls", "a", MON)]
    for component, rep, day in steps:
        counted.count(component, ("rep", rep), day)
        applied.apply([Contribution(component, ("rep", rep), day)])
    counted.apply([created("b", TUE)])
    applied.apply([created("b", TUE)])
    assert counted.changed() > 0
    assert counted.cell("team:t1", MON) == {"calls": 3}
    assert counted.take_dirty() == applied.take_dirty()
    assert counted.changed() == 0
    counted.count("calls", ("rep", "a"), MON)  # a packed past day's cell keeps counting
    counted.count("calls", ("rep", "a"), TUE)
    applied.apply([Contribution("calls", ("rep", "a"), MON), Contribution("calls", ("rep", "a"), TUE)])
    assert counted.take_dirty() == applied.take_dirty()


def test_a_count_lands_in_the_scopes_of_when_it_was_counted() -> None:
    # A rep placed in another team before the fold (the reps file is read while a batch
    # awaits its dead letters) keeps its counted events where `apply` would have put them;
    # the rebuild after the move carries them over.
    counted, applied = cells(), cells()
    counted.count("calls", ("rep", "a"), MON)
    applied.apply([Contribution("calls", ("rep", "a"), MON)])
    for c in (counted, applied):
        c.directory.place("a", "t2", "north")
    assert counted.take_dirty() == applied.take_dirty()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["calls", "bookings", "won", "stage_days_sum|stage=demo", "cycle_days_sum"]),
    st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
              st.decimals(allow_nan=False, allow_infinity=False, places=None)),
))
def test_a_packed_cell_gives_back_each_total_exactly(values) -> None:
    # Exactly: the same type, and for a Decimal the same sign, digits and exponent
    # (1E+2 and 100 are equal, yet print differently downstream).
    kept = {k: v for k, v in values.items() if v != 0}
    back = dict(_items(_pack(values)))
    assert back == kept
    for key, value in kept.items():
        assert type(back[key]) is type(value)
        if isinstance(value, D):
            assert back[key].as_tuple() == value.as_tuple()


def test_counts_beyond_64_bits_stay_exact_unpacked() -> None:
    packed = _pack({"calls": 2**64, "bookings": D("1.5")})
    assert dict(_items(packed)) == {"calls": 2**64, "bookings": D("1.5")}
