"""Was the pipeline run right? Counts that must add up, or the benchmark fails loudly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class BenchFailure(RuntimeError):
    """A measurement that cannot be trusted: lost or extra events, a worker that died."""


@dataclass(frozen=True)
class Accounting:
    """Where the N input events went, from the worker's /status (and its held gauge)."""

    events_in: int
    applied: int
    rejected: int
    duplicates: int
    held: int

    @property
    def accounted(self) -> int:
        return self.applied + self.rejected + self.duplicates + self.held


def accounting(status: dict[str, Any], held: float = 0.0) -> Accounting:
    return Accounting(
        events_in=int(status.get("events_in", 0)), applied=int(status.get("events_applied", 0)),
        rejected=int(status.get("events_rejected", 0)), duplicates=int(status.get("duplicates", 0)),
        held=int(held),
    )


def problems(counted: Accounting, expected: int, expected_duplicates: int | None = None) -> list[str]:
    """Why a finished run is wrong (empty when every event is accounted for exactly once)."""
    found = []
    if counted.events_in != expected:
        found.append(f"events_in is {counted.events_in}, the backlog holds {expected}")
    if counted.accounted != expected:
        found.append(
            f"applied {counted.applied} + rejected {counted.rejected} + duplicates "
            f"{counted.duplicates} + held {counted.held} = {counted.accounted}, not {expected}"
        )
    if expected_duplicates is not None and counted.duplicates != expected_duplicates:
        found.append(f"{counted.duplicates} duplicates dropped, the backlog re-sent {expected_duplicates}")
    return found


def check(counted: Accounting, expected: int, expected_duplicates: int | None = None) -> None:
    """Raise BenchFailure naming every count that does not add up."""
    found = problems(counted, expected, expected_duplicates)
    if found:
        raise BenchFailure("the pipeline run is wrong: " + "; ".join(found))
