"""Creates the contract's topics (kpi.values compacted) and reads the input partition count."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings


class TopicLayoutError(RuntimeError):
    """The existing topics cannot be used together (e.g. different partition counts)."""


def internal_topic_names(settings: Settings) -> tuple[str, str]:
    """The repartition topics: events by entity, and day cells by scope."""
    return f"{settings.app_id}-entity-events", f"{settings.app_id}-cells"




def state_topic_name(settings: Settings, step: str) -> str:
    """Where a worker step keeps its state (compacted, partitioned like the step's input)."""
    return f"{settings.app_id}-{step}-state"


def topic_specs(settings: Settings, input_partitions: int | None = None) -> list[NewTopic]:
    compacted = {"cleanup.policy": "compact"}
    partitions, replicas = settings.topic_partitions, settings.topic_replication_factor
    entity_events, cells = internal_topic_names(settings)
    inputs = input_partitions or partitions
    return [
        NewTopic(state_topic_name(settings, "stream-time"), inputs, replicas, topic_configs=compacted),
        NewTopic(state_topic_name(settings, "entities"), partitions, replicas, topic_configs=compacted),
        NewTopic(state_topic_name(settings, "rollup"), partitions, replicas, topic_configs=compacted),
        NewTopic(entity_events, partitions, replicas),
        NewTopic(cells, partitions, replicas),
        NewTopic(settings.topic_crm, partitions, replicas),
        NewTopic(settings.topic_billing, partitions, replicas),
        NewTopic(settings.topic_backfill, partitions, replicas),
        NewTopic(settings.topic_reps, partitions, replicas, topic_configs=compacted),
        NewTopic(settings.topic_kpi_values, partitions, replicas, topic_configs=compacted),
        NewTopic(settings.topic_kpi_alerts, partitions, replicas),
        NewTopic(settings.topic_dlq, partitions, replicas),
    ]


async def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the partition count of the input topics.

    State is partitioned like the input, so the worker must know that count before
    its tables are defined.
    """
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        inputs = [spec for spec in topic_specs(settings) if spec.name in (settings.topic_crm, settings.topic_billing)]
        await _create(admin, [spec for spec in inputs if spec.name not in existing])
        described = await admin.describe_topics([settings.topic_crm, settings.topic_billing])
        counts = {d["topic"]: len(d.get("partitions") or []) for d in described}
        crm, billing = counts.get(settings.topic_crm, 0), counts.get(settings.topic_billing, 0)
        if crm and billing and crm != billing:
            raise TopicLayoutError(
                f"{settings.topic_crm} has {crm} partitions but {settings.topic_billing} has "
                f"{billing}: give them the same number (one agent reads both)"
            )
        input_partitions = crm or billing or settings.topic_partitions
        existing = set(await admin.list_topics())
        await _create(admin, [spec for spec in topic_specs(settings, input_partitions)
                              if spec.name not in existing])
        return input_partitions
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, specs: list[NewTopic]) -> None:
    if not specs:
        return
    try:
        await admin.create_topics(specs)
    except TopicAlreadyExistsError:
        pass  # another worker created it first
