"""Lateness per input partition and the future-skew limit."""

import pytest

from kpi_state.errors import InvalidEvent
from kpi_state.stream_clock import StreamClock

DAY = 86400.0
NOW = 1_800_000_000.0


def reason(clock, key, ts, wall=NOW):
    try:
        clock.check(key, ts, wall)
    except InvalidEvent as exc:
        return exc.reason
    return None


def test_late_is_judged_per_partition():
    clock = StreamClock(lateness_s=7 * DAY, future_skew_s=300)
    assert reason(clock, "crm|0", NOW - DAY) is None
    # Partition 1 is behind partition 0 by 20 days: still fine on its own partition.
    assert reason(clock, "crm|1", NOW - 21 * DAY) is None
    assert reason(clock, "crm|0", NOW - 9 * DAY) == "too_late"
    assert reason(clock, "crm|0", NOW - 7 * DAY) is None  # exactly at the limit is accepted


@pytest.mark.parametrize(("ahead", "expected"), [(299, None), (300, None), (301, "future_timestamp")])
def test_future_skew(ahead, expected):
    clock = StreamClock(lateness_s=7 * DAY, future_skew_s=300)
    assert reason(clock, "crm|0", NOW + ahead) == expected


def test_rejected_events_do_not_move_stream_time():
    clock = StreamClock(lateness_s=DAY, future_skew_s=300)
    assert reason(clock, "crm|0", NOW + 10_000) == "future_timestamp"
    assert clock.newest == {}
    assert reason(clock, "crm|0", NOW - 10) is None
    assert clock.take_changed() == {"crm|0": NOW - 10}
    assert clock.take_changed() == {}


def test_history_topics_have_no_lateness_limit_but_keep_the_clock_skew_check() -> None:
    import pytest

    from kpi_state.errors import InvalidEvent
    from kpi_state.stream_clock import StreamClock

    clock = StreamClock(lateness_s=7 * 86400, future_skew_s=300)
    clock.check("events.backfill|0", 2_000_000_000.0, wall_now=2_000_000_000.0, late_allowed=True)
    # A year older than the partition's stream time: fine for history, too late for live.
    clock.check("events.backfill|0", 2_000_000_000.0 - 365 * 86400, wall_now=2_000_000_000.0, late_allowed=True)
    clock.check("crm.events|0", 2_000_000_000.0, wall_now=2_000_000_000.0)
    with pytest.raises(InvalidEvent) as late:
        clock.check("crm.events|0", 2_000_000_000.0 - 365 * 86400, wall_now=2_000_000_000.0)
    assert late.value.reason == "too_late"
    with pytest.raises(InvalidEvent) as future:
        clock.check("events.backfill|0", 2_000_000_000.0 + 3600, wall_now=2_000_000_000.0, late_allowed=True)
    assert future.value.reason == "future_timestamp"
