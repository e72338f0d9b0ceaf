"""The Faust app factory: wires topics, the worker steps, timers and web pages (nothing else).

edge      crm.events, billing.events, events.backfill → validate, DLQ, bundle by entity → {app}-entity-events
entities  {app}-entity-events → dedup, lifecycles, day cells → {app}-cells (bundled by scope)
rollup    {app}-cells → scope totals, KPI records → kpi.values, Redis, /metrics, alerts

Records reach the steps a fetch at a time (agents/delivery.py), not through Faust agents.
"""

from __future__ import annotations

import time
from typing import Any

import faust
import mode

from agents.alerting import install_alerting
from agents.batches import StepTopics, dead_letter, edge_batch, entity_batch, rebuild_cells, rollup_batch
from agents.delivery import PipelineApp
from agents.entities import input_sources
from agents.health import attach_health
from agents.lag import measure_lag
from agents.flush_trigger import FlushTrigger
from agents.pacing import FlushPacing
from agents.publish import Publisher
from agents.recovery import Recovery
from agents.runtime import Runtime, faust_credentials
from agents.web import register_pages
from streams.reps import RepsReader, read_reps_file
from streams.settings import Settings
from streams.topics import internal_topic_names, state_topic_name


def create_app(settings: Settings, *, input_partitions: int) -> tuple[faust.App, Runtime]:
    """Build the app for `settings`; `input_partitions` is the input topics' partition count."""
    runtime = Runtime(settings)
    if settings.reps_file is not None:
        for rep_id, team_id, region_id in read_reps_file(settings.reps_file):
            runtime.place_rep(rep_id, team_id, region_id)
    app = PipelineApp(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        table_standby_replicas=0,
        producer_acks=-1,
        logging_config=None,
    )

    # No poll-record limit: aiokafka would then hand out one partition's buffered records
    # before the next one's, and an input partition seen late would find the entity step's
    # watermark (the slowest of the input partitions) far behind the others: held events wait.
    app.batch_routes.batch_max = settings.batch_max

    def raw_topic(*names: str) -> faust.TopicT:
        return app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    entity_events_name, cells_name = internal_topic_names(settings)
    # What the steps have not handled yet, theirs included: a backlog that has left the
    # inputs is still on its way through the entity and rollup steps.
    routed = {settings.topic_crm, settings.topic_billing, settings.topic_backfill, entity_events_name, cells_name}
    topics = StepTopics(
        dlq=settings.topic_dlq, cells=cells_name,
        entity_state=state_topic_name(settings, "entities"), rollup_state=state_topic_name(settings, "rollup"),
        entity_events=entity_events_name, stream_time_state=state_topic_name(settings, "stream-time"),
        partitions=settings.topic_partitions,
    )
    gate, out = runtime.gate, runtime.out
    out.track((entity_events_name, cells_name))
    alerting = install_alerting(app, runtime, topics)
    recovery = Recovery(settings, runtime, topics, alerting)
    app.on_partitions_assigned.connect(lambda sender, assigned=None, **_: recovery.on_assigned(assigned))
    app.on_partitions_revoked.connect(lambda sender, revoked=None, **_: recovery.on_revoked(revoked))

    # Ten batches waiting is a backlog; less is live traffic that a slow flush let pile up.
    pacing = FlushPacing(catch_up_s=settings.catch_up_flush_s, backlog_limit=10 * settings.batch_max,
                         idle_s=settings.flush_interval_s)
    trigger = FlushTrigger(
        pacing, lambda: app.consumer, routed=routed, produced=out.produced_end,
        upstream=(*sorted(routed - {cells_name}),), flush=lambda: flush_outputs(),
        ready=lambda: runtime.ready,
    )
    batch_done = trigger.batch_done

    async def edge(records: list[Any]) -> None:
        async with gate.turn("edge"):
            await edge_batch(runtime.edge, gate.owned_records(records), out, topics, time.time())
        batch_done()

    async def reps_gate(records: list[Any]) -> None:
        # sales.reps is read whole by every worker (streams/reps.py); this only dead-letters.
        _, rejections = runtime.reps_gate.process(records, time.time())
        await dead_letter(out, settings.topic_dlq, rejections)
        await out.flush()

    live_inputs = (settings.topic_crm, settings.topic_billing)  # history never holds the watermark
    runtime.entities.inputs_of = lambda: input_sources(app.consumer, live_inputs)

    async def entities(records: list[Any]) -> None:
        async with gate.turn("entities"):
            await entity_batch(runtime.entities, gate.owned_records(records), out, topics, time.time())
            await alerting.heartbeats()  # after the cells: the rollup's watermark (alerts)
        batch_done()

    @app.timer(1.0, on_leader=False)
    async def stop_waiting_for_silent_inputs() -> None:
        # An input partition that stays empty stops holding the watermark back after
        # KPI_INPUT_WAIT_S, whether other input arrives or not: what that frees (orphans,
        # days to judge) leaves at once.
        if not runtime.ready:
            return
        async with gate.turn("entities"):  # never between a batch's cells and its heartbeats
            if runtime.entities.expect_inputs(time.time()):
                await entity_batch(runtime.entities, [], out, topics)
                await alerting.heartbeats()

    async def rollup(records: list[Any]) -> None:
        async with gate.turn("rollup"):
            await rollup_batch(runtime.rollup, gate.owned_records(records), out, topics)
            await alerting.after_batch()  # the batch's alert transitions, once its state is stored
        batch_done()

    # In this order within a fetch: what the edge forwards is fetched by a later one.
    app.route_batches(raw_topic(settings.topic_crm, settings.topic_billing, settings.topic_backfill), edge)
    app.route_batches(raw_topic(settings.topic_reps), reps_gate)
    app.route_batches(raw_topic(entity_events_name), entities)
    app.route_batches(raw_topic(cells_name), rollup)

    publisher = runtime.publisher = Publisher(runtime, settings.topic_kpi_values)

    @app.service
    class OutputService(mode.Service):
        """Starts the shared producer with the worker and drains it on the way out."""

        async def on_start(self) -> None:
            await out.start()

        async def on_stop(self) -> None:
            await out.flush()
            await out.stop()

    async def flush_outputs() -> None:
        if runtime.directory_changed:
            runtime.directory_changed = False
            async with gate.turn("entities"):
                await rebuild_cells(runtime.entities, out, topics)
        await publisher.flush()

    @app.timer(settings.flush_interval_s, on_leader=False)
    async def flush() -> None:
        await trigger.tick()

    @app.task
    async def flush_when_drained() -> None:
        await trigger.watch(lambda: app.should_stop)

    watched = {settings.topic_crm, settings.topic_billing, settings.topic_backfill, settings.topic_reps,
               entity_events_name, cells_name}

    def refresh_lag() -> None:
        measure_lag(app.consumer, watched, runtime.metrics)

    runtime.refresh_lag = refresh_lag  # /status measures afresh: the timer's is up to a second old

    @app.timer(1.0, on_leader=False)
    async def lag() -> None:
        refresh_lag()

    @app.task
    async def connect_sinks() -> None:
        if runtime.redis is not None:
            await runtime.redis.setup()

    reps_reader = RepsReader(
        settings, runtime.decoder, lambda rep: runtime.place_rep(rep.rep_id, rep.team_id, rep.region_id)
    )

    @app.task
    async def follow_reps() -> None:
        await reps_reader.run()

    attach_health(app, runtime, recovery.state_topics)
    register_pages(app, runtime)
    return app, runtime
