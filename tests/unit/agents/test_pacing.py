"""FlushPacing: flushes spaced under load, at once when the steps are idle."""

from __future__ import annotations

from agents.pacing import FlushPacing


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def flush(pacing: FlushPacing, clock: Clock, seconds: float, batches_during: int = 0) -> None:
    pacing.start()
    for _ in range(batches_during):
        pacing.batch_done()
    clock.now += seconds
    pacing.done()


def test_a_slow_flush_is_followed_by_four_times_its_length_of_batches() -> None:
    clock = Clock()
    pacing = FlushPacing(clock)
    flush(pacing, clock, 2.0)
    pacing.batch_done()
    clock.now += 7.9
    assert not pacing.due()
    clock.now += 0.2
    assert pacing.due()


def test_when_no_batch_ran_since_the_last_flush_ended_the_next_one_is_due_at_once() -> None:
    clock = Clock()
    pacing = FlushPacing(clock)
    flush(pacing, clock, 2.0, batches_during=3)  # batches during the flush do not count
    clock.now += 1.0
    assert pacing.due()  # idle steps: what is left is published now, not in 8 s
