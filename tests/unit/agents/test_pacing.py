"""FlushPacing: flushes spaced under load, at once when no batch waits."""

from __future__ import annotations

from agents.pacing import FlushPacing


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_flush_is_followed_by_four_times_its_length_of_batches() -> None:
    clock = Clock()
    pacing = FlushPacing(clock)
    pacing.start()
    clock.now += 2.0  # the flush took 2 s
    pacing.done()
    pacing.batch_done()
    clock.now += 7.9
    assert not pacing.due()
    clock.now += 0.2
    assert pacing.due()


def test_without_batches_since_the_last_flush_the_next_one_is_due_at_once() -> None:
    clock = Clock()
    pacing = FlushPacing(clock)
    pacing.start()
    clock.now += 2.0
    pacing.done()
    assert pacing.due()  # nothing waits: what is left is published now, not in 8 s
