"""Creates the contract's topics (kpi.values compacted) and reads the input partition count."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings


def topic_specs(settings: Settings) -> list[NewTopic]:
    compacted = {"cleanup.policy": "compact"}
    partitions, replicas = settings.topic_partitions, settings.topic_replication_factor
    return [
        NewTopic(settings.topic_crm, partitions, replicas),
        NewTopic(settings.topic_billing, partitions, replicas),
        NewTopic(settings.topic_reps, partitions, replicas, topic_configs=compacted),
        NewTopic(settings.topic_kpi_values, partitions, replicas, topic_configs=compacted),
        NewTopic(settings.topic_kpi_alerts, partitions, replicas),
        NewTopic(settings.topic_dlq, partitions, replicas),
    ]


async def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the partition count of the CRM input topic.

    State is partitioned like the input, so the worker must know that count before
    its tables are defined.
    """
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker created it first
        described = await admin.describe_topics([settings.topic_crm])
        partitions = described[0].get("partitions") or []
        return len(partitions) or settings.topic_partitions
    finally:
        await admin.close()
