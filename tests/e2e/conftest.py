"""The e2e tests reuse the named fixtures that start the real broker, Redis and workers."""

from tests.integration.conftest import (  # noqa: F401 - fixtures, found by name
    broker_url,
    pipeline_env,
    redis_url,
    start_worker,
)
