"""The worker's timing settings reach Faust, and /status measures the lag when asked."""

from __future__ import annotations

from pathlib import Path

from agents.app import create_app
from streams.settings import Settings


def test_offsets_are_committed_at_the_configured_interval(tmp_path: Path) -> None:
    app, _ = create_app(Settings(app_id="timing", data_dir=tmp_path, commit_interval_s=0.25), input_partitions=4)
    assert app.conf.broker_commit_interval == 0.25
    default, _ = create_app(Settings(app_id="timing-default", data_dir=tmp_path), input_partitions=4)
    # Faust's own default is 2.8 s: a drained backlog showed lag that long.
    assert default.conf.broker_commit_interval == 0.5


def test_the_lag_is_measured_from_the_consumer_when_refreshed(tmp_path: Path) -> None:
    app, runtime = create_app(Settings(app_id="timing-lag", data_dir=tmp_path), input_partitions=4)
    asked = []

    class Consumer:
        _committed_offset: dict = {}

        def assignment(self) -> set:
            asked.append("assignment")
            return set()

    app._consumer = Consumer()  # what app.consumer returns once the worker runs
    runtime.refresh_lag()
    assert asked == ["assignment"]
