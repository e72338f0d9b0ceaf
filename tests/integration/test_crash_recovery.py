"""SIGKILL the worker at random points of a replay: afterwards every KPI equals the reference."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time

import pytest

from tests.integration.reference_check import (
    decode_valid,
    latest_published,
    mismatches,
    reference_for,
    wait_until_drained,
)
from tests.integration.test_reference_equality import produce, simulated

pytestmark = pytest.mark.integration

# Kill points and traffic are seeded; KPI_TEST_SEED picks other ones (the soak loop in
# `make soak` runs many), CI runs the default.
SEED = int(os.environ.get("KPI_TEST_SEED", "0"))


def produce_in_background(env, records) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(produce(env, records)), daemon=True)
    thread.start()
    return thread


def assert_matches_reference(worker, env, records, directory):
    wait_until_drained(worker, 0, timeout=600)
    published = latest_published(env)
    reference = reference_for(decode_valid(value for _, _, value in records), directory)
    problems = mismatches(published, reference)
    assert not problems, f"{len(problems)} of {len(published)} differ:\n" + "\n".join(problems[:20])


@pytest.mark.timeout(900)
def test_repeated_sigkill_loses_nothing_and_counts_nothing_twice(pipeline_env, start_worker):
    env = pipeline_env
    reps, records, directory = simulated(env, 9_000, seed=23 + SEED)
    asyncio.run(produce(env, reps))
    rng = random.Random(5 + SEED)
    worker = start_worker(env)
    producer = produce_in_background(env, records)
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 4.0))
        worker.process.kill()  # SIGKILL: no flush, no commit, no goodbye to the group
        worker.process.wait()
        worker = start_worker(env, timeout=120)
    producer.join()
    assert_matches_reference(worker, env, records, directory)


@pytest.mark.timeout(900)
def test_a_second_worker_takes_over_when_the_first_is_killed(pipeline_env, start_worker):
    env = pipeline_env
    reps, records, directory = simulated(env, 8_000, seed=29 + SEED)
    asyncio.run(produce(env, reps))
    first = start_worker(env)
    second = start_worker(env)
    producer = produce_in_background(env, records)
    time.sleep(random.Random(SEED).uniform(1.0, 5.0))
    first.process.kill()
    first.process.wait()
    producer.join()
    assert_matches_reference(second, env, records, directory)
    assert second.process.poll() is None
