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


def work(pacing: FlushPacing, clock: Clock, seconds: float) -> None:
    """Batches done every quarter of a second for `seconds`: steps under load."""
    for _ in range(round(seconds * 4)):
        clock.now += 0.25
        pacing.batch_done()


def test_a_slow_flush_is_followed_by_as_long_a_time_of_batches() -> None:
    clock = Clock()
    pacing = FlushPacing(clock)
    flush(pacing, clock, 2.0)
    work(pacing, clock, 1.75)
    assert not pacing.due()
    work(pacing, clock, 0.5)
    assert pacing.due()


def test_when_no_batch_ran_since_the_last_flush_ended_the_next_one_is_due_at_once() -> None:
    clock = Clock()
    pacing = FlushPacing(clock)
    flush(pacing, clock, 2.0, batches_during=3)  # batches during the flush do not count
    clock.now += 1.0
    assert pacing.due()  # idle steps: what is left is published now, not a second later


def test_steps_idle_for_a_tick_publish_at_once() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, idle_s=1.0)
    flush(pacing, clock, 4.0)
    work(pacing, clock, 1.0)
    assert not pacing.due()  # under load: 4 s of batches first
    clock.now += 1.0  # the last batch was a second ago: the backlog is done
    assert pacing.due()


def test_while_a_backlog_waits_flushes_are_a_catch_up_interval_apart() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000)
    assert pacing.due(backlog=200_000)  # the first flush is not held back
    flush(pacing, clock, 0.5)
    work(pacing, clock, 10.0)  # far past the 0.5 s a flush that long waits
    assert not pacing.due(backlog=150_000)  # catching up: the records would change again
    # The backlog has left the inputs but is still in the internal topics' bundles:
    # catching up lasts until the next flush.
    assert not pacing.due(backlog=10)
    work(pacing, clock, 20.0)
    assert pacing.due(backlog=150_000)
    flush(pacing, clock, 0.5)
    work(pacing, clock, 10.0)
    assert pacing.due(backlog=4_000)  # a batch or less waiting since: live traffic, flushed now


def test_steps_waiting_for_a_fetch_in_the_middle_of_a_backlog_are_not_idle() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000)
    flush(pacing, clock, 0.5)
    work(pacing, clock, 3.0)
    clock.now += 1.5  # no batch for more than a tick: the next fetch is slow to come
    assert not pacing.due(backlog=150_000)  # records still wait: flushing now publishes twice
    # A few records of the internal topics can be bundles of thousands of events.
    assert not pacing.due(backlog=40)
    assert pacing.due(backlog=0)  # nothing waits any more: the backlog is done


def test_a_backlog_that_never_drains_holds_the_flush_back_a_catch_up_interval_at_most() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000)
    flush(pacing, clock, 0.5)
    clock.now += 28.0
    pacing.batch_done()
    clock.now += 1.0  # 29 s after the flush ended
    assert not pacing.due(backlog=150_000)
    clock.now += 1.5
    assert pacing.due(backlog=150_000)


def test_a_step_busy_with_one_long_batch_is_not_idle() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000)
    flush(pacing, clock, 0.5)
    work(pacing, clock, 3.0)
    assert not pacing.due(backlog=150_000)
    clock.now += 2.0  # the rollup judging a long history's alerts: no batch done meanwhile
    assert not pacing.due(backlog=0, busy=True)
    assert pacing.due(backlog=0, busy=False)


def test_a_drained_backlog_known_exactly_is_published_without_the_idle_wait() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000, idle_s=1.0)
    flush(pacing, clock, 0.5)
    work(pacing, clock, 3.0)
    assert not pacing.due(backlog=150_000, exact=True)
    assert pacing.catching_up
    # The last batch just ended: a second of quiet would be needed if the ends were guessed...
    assert not pacing.due(backlog=0, busy=False)
    # ...but not when the worker wrote everything its internal topics hold.
    assert pacing.due(backlog=0, busy=False, exact=True)
    assert not pacing.due(backlog=0, busy=True, exact=True)  # a step still has a batch
    assert not pacing.due(backlog=1, exact=True)  # one bundle left can be thousands of events
    flush(pacing, clock, 0.5)
    assert not pacing.catching_up


def test_live_traffic_known_exactly_keeps_its_spacing() -> None:
    clock = Clock()
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000, idle_s=1.0)
    flush(pacing, clock, 2.0)
    work(pacing, clock, 0.5)
    # Nothing waits at this tick, but no backlog was seen: a flush that took 2 s is
    # followed by 2 s of batches first, as without exact ends.
    assert not pacing.due(backlog=0, busy=False, exact=True)
