"""Per (scope, local day) component totals of one entity partition, from entity contributions."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from kpi_state.contributions import Contribution
from kpi_state.directory import RepDirectory

Cell = tuple[str, str]  # (scope, local ISO day or "" for snapshots)


def component_key(component: str, dims: tuple[tuple[str, str], ...]) -> str:
    """`stage_entered|stage=demo`: one string per component and dims."""
    return component + "".join(f"|{name}={value}" for name, value in dims)


# One key string per component and dims, shared by every cell that holds it (there are a
# few dozen, against hundreds of thousands of cells).
_KEYS: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def _key(component: str, dims: tuple[tuple[str, str], ...]) -> str:
    key = _KEYS.get((component, dims))
    if key is None:
        key = _KEYS[(component, dims)] = component_key(component, dims) if dims else component
    return key


# Cells of past days are stored packed: one msgpack array, [layout, total, total, ...], the
# layout an index into `_LAYOUT_KEYS`, the sorted component keys shared by every cell that
# holds the same components. Counts are msgpack ints, Decimal totals their exact text
# (Decimal(str(d)) is d again, exponent included). The cells of every past (scope, day) are
# most of an engine's memory: a dict per cell cost about four times a tuple of the totals
# (docs/BENCHMARKS.md, sixth round), and a tuple about three times these bytes, its Decimals
# 104 B each (twelfth round). Old days still change now and then (a win counts on its
# opportunity's creation day), so a packed cell is unpacked when it is touched.
_LAYOUTS: dict[tuple[str, ...], int] = {}
_LAYOUT_KEYS: list[tuple[str, ...]] = []
Packed = bytes | tuple  # msgpack [layout, *totals]; (keys, *totals) for what msgpack cannot hold
_pack_array = msgspec.msgpack.Encoder(decimal_format="string").encode
_unpack_array = msgspec.msgpack.Decoder().decode


def _pack(values: dict[str, Any]) -> Packed:
    keys = tuple(sorted(k for k, v in values.items() if v != 0))
    layout = _LAYOUTS.get(keys)
    if layout is None:
        layout = _LAYOUTS[keys] = len(_LAYOUT_KEYS)
        _LAYOUT_KEYS.append(keys)
    totals = [values[k] for k in keys]
    try:
        return _pack_array([layout, *totals])
    except OverflowError:  # a count beyond 64 bits: kept as objects
        return (keys, *totals)


def _unpacked(stored: bytes) -> Iterable[tuple[str, Any]]:
    layout, *totals = _unpack_array(stored)
    return zip(_LAYOUT_KEYS[layout], [Decimal(v) if type(v) is str else v for v in totals])


def _items(stored: dict[str, Any] | Packed | None) -> Iterable[tuple[str, Any]]:
    if stored is None:
        return ()
    if type(stored) is dict:
        return stored.items()
    if type(stored) is bytes:
        return _unpacked(stored)
    return zip(stored[0], stored[1:])


def as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value))  # a float: its shortest exact-looking text


class CellUpdate(NamedTuple):
    """The absolute content of one (scope, day) cell, as sent to the rollup."""

    values: dict[str, Decimal]
    members: dict[str, list[str]]


class DayCells:
    """Aggregates contributions into (scope, day) cells and remembers which changed."""

    def __init__(self, directory: RepDirectory) -> None:
        self.directory = directory
        # Counts stay ints (small ones are shared objects), money and days Decimal; both
        # leave as Decimal, so the sums are exactly those of Decimals.
        # A cell of the newest day seen is a dict; older ones are packed once taken (`_pack`).
        self.values: dict[Cell, dict[str, int | Decimal] | Packed] = {}
        self.newest_day = ""
        self._open: set[Cell] = set()  # cells stored as a dict, packed once their day is past
        self.members: dict[Cell, dict[str, Counter[str]]] = {}
        self.dirty: set[Cell] = set()
        # Activity counts not yet added to their cells: (scopes, day, component) → n.
        # An event counts in four scopes (its rep's, team's, region's and the company's);
        # adding each one there cost four cell updates an event, folded once a batch instead.
        # The scopes are those of when it was counted: a rep moved to another team before
        # the fold must not take the event along (the rebuild after a move does that).
        self._counts: dict[tuple[tuple[str, ...], str, str], int] = {}
        # Contributions last applied per entity, for entities updated by replacement.
        self.by_entity: dict[bytes, list[Contribution]] = {}

    def replace(self, entity: bytes, contributions: list[Contribution]) -> None:
        """Swap an entity's previous contributions for `contributions`."""
        old = self.by_entity.get(entity)
        if old == contributions:
            return
        self.apply_change(old or [], contributions)
        if contributions:
            self.by_entity[entity] = contributions
        else:
            self.by_entity.pop(entity, None)

    def apply_change(self, before: list[Contribution], after: list[Contribution]) -> None:
        """An entity's contributions went from `before` to `after`: apply the difference.

        An event changes a few of an entity's contributions (an opportunity's stage move
        touches its old and new stage); those both lists share cancel out here, before
        they would cost a cell update per scope each (docs/BENCHMARKS.md, seventh round).
        """
        if not before:
            self.apply(after, +1)
            return
        gone, came = Counter(before), Counter(after)
        self.apply((gone - came).elements(), -1)
        self.apply((came - gone).elements(), +1)

    def apply(self, contributions: Iterable[Contribution], sign: int = 1) -> None:
        # Every contribution but an activity event's (those take `count`): lookups are bound
        # once per call.
        scopes_of = self.directory.scopes
        dirty_add = self.dirty.add
        all_values = self.values
        keys = _KEYS
        newest = self.newest_day
        for c in contributions:
            key = keys.get((c.component, c.dims)) or _key(c.component, c.dims)
            value = c.value if type(c.value) is int else as_decimal(c.value)
            day = c.day
            if day > newest:
                newest = self.newest_day = day
            if sign < 0:
                value = -value
            if c.distinct is not None:
                self._count_member(scopes_of(c.attribution), day, key, c.distinct, sign)
                continue
            for scope in scopes_of(c.attribution):
                cell = (scope, day)
                dirty_add(cell)
                values = all_values.get(cell)
                if type(values) is not dict:
                    values = self._opened(cell, values)
                values[key] = values.get(key, 0) + value

    def count(self, component: str, attribution: tuple[str, str], day: str) -> None:
        """One more of a plain count in every scope of `attribution`: `apply` of the single
        contribution (component, attribution, day, (), 1), without building it. Activity
        events, most of any traffic, change their cells this way only (see `_counts`)."""
        if day > self.newest_day:
            self.newest_day = day
        key = (self.directory.scopes(attribution), day, component)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1

    def _fold_counts(self) -> None:
        """Add the pending activity counts to the cells of every scope they count in."""
        counts = self._counts
        if not counts:
            return
        self._counts = {}
        all_values = self.values
        dirty_add = self.dirty.add
        # The same few lines as `apply`'s, inlined likewise: a call per cell costs what folding saves.
        for (scopes, day, component), n in counts.items():
            for scope in scopes:
                cell = (scope, day)
                dirty_add(cell)
                values = all_values.get(cell)
                if type(values) is not dict:
                    values = self._opened(cell, values)
                values[component] = values.get(component, 0) + n

    def changed(self) -> int:
        """Cells changed since the last take, counts not yet folded in included (about)."""
        return len(self.dirty) + len(self._counts)

    def cell(self, scope: str, day: str) -> dict[str, int | Decimal]:
        """The values of one cell as they stand (read it, never write it)."""
        self._fold_counts()
        return dict(_items(self.values.get((scope, day))))

    def _opened(self, cell: Cell, stored: Packed | None) -> dict[str, int | Decimal]:
        """The writable values of a cell that is new (`stored` None) or packed (a past day)."""
        if stored is None:
            # One day string for every cell of that day (they are many: scopes × days).
            cell = (cell[0], sys.intern(cell[1]))
            values: dict[str, int | Decimal] = {}
        else:
            values = dict(_items(stored))
        self.values[cell] = values
        self._open.add(cell)
        return values

    def _count_member(self, scopes: tuple[str, ...], day: str, key: str, member: str, sign: int) -> None:
        for scope in scopes:
            cell = (scope, day)
            self.dirty.add(cell)
            ids = self.members.setdefault(cell, {}).setdefault(key, Counter())
            ids[member] += sign
            if ids[member] <= 0:
                del ids[member]

    def clear(self) -> None:
        """Forget everything, marking every cell that held something as changed."""
        self._fold_counts()
        self.dirty |= set(self.values) | set(self.members)
        self.values.clear()
        self.members.clear()
        self.by_entity.clear()
        self._open.clear()

    def mark_all_dirty(self) -> None:
        self._fold_counts()
        self.dirty |= set(self.values) | set(self.members)

    def take_dirty(self) -> dict[Cell, CellUpdate]:
        """Absolute content of every changed cell (empty cells included, so they clear)."""
        self._fold_counts()
        out: dict[Cell, CellUpdate] = {}
        newest = self.newest_day
        for cell in self.dirty:
            stored = self.values.get(cell)
            values = {k: as_decimal(v) for k, v in _items(stored) if v != 0}
            members = {k: sorted(ids) for k, ids in self.members.get(cell, {}).items() if ids}
            out[cell] = CellUpdate(values, members)
            if not values and not members:
                self.values.pop(cell, None)
                self.members.pop(cell, None)
        # Snapshots ("" days) and the newest day change all the time: only past days are packed.
        for cell in [cell for cell in self._open if cell[1] and cell[1] < newest]:
            self._open.discard(cell)
            stored = self.values.get(cell)
            if type(stored) is dict:
                self.values[cell] = _pack(stored)
        self.dirty.clear()
        return out
