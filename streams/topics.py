"""The topic catalog: one topic per aggregate type, ``<namespace>.<aggregate type>.v1``, keyed by
the aggregate id, so every event of one aggregate lands in one partition, in order.

The aggregate types come from the domain events themselves (``streams.contracts``); a new
``DomainEvent`` subclass with a new ``aggregate_type`` gets its topic without an edit here.
``ensure_topics`` creates missing topics at relay start-up and leaves existing ones alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.logging import get_logger
from core.settings import Settings
from streams.contracts import event_classes

log = get_logger(__name__)

TOPIC_VERSION = 1  # the envelope/keying contract of the topics; payloads version per event type
KEY = "aggregate_id"


@dataclass(frozen=True)
class Topic:
    name: str
    aggregate_type: str
    partitions: int
    replication_factor: int
    retention_ms: int
    event_types: tuple[str, ...]
    key: str = KEY

    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def topic_name(aggregate_type: str, namespace: str = "aqstream") -> str:
    return f"{namespace}.{aggregate_type}.v{TOPIC_VERSION}"


def catalog(settings: Settings) -> list[Topic]:
    """Every topic the platform publishes to, ordered by name."""
    by_aggregate: dict[str, list[str]] = {}
    for cls in event_classes():
        types_ = by_aggregate.setdefault(cls.aggregate_type, [])
        if cls.event_type not in types_:
            types_.append(cls.event_type)
    topics = [
        Topic(
            name=topic_name(aggregate, settings.topic_namespace),
            aggregate_type=aggregate,
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            retention_ms=settings.topic_retention_ms,
            event_types=tuple(event_types),
        )
        for aggregate, event_types in by_aggregate.items()
    ]
    return sorted(topics, key=lambda t: t.name)


def agent_topics(settings: Settings, event_types: Iterable[str]) -> list[str]:
    """The catalog's topics that carry any of ``event_types``."""
    wanted = set(event_types)
    return [t.name for t in catalog(settings) if wanted & set(t.event_types)]


DLQ = "dlq"  # not an aggregate: the dead letters of the worker (streams/dlq.py)


def dlq_topic(settings: Settings) -> Topic:
    """``<namespace>.dlq.v1``: messages the worker gave up on, each with its original key, value
    and headers plus ``dlq_*`` headers (where it came from, which agent, the error). Kept apart
    from ``catalog()``, which is the published contract of the domain topics."""
    return Topic(
        name=topic_name(DLQ, settings.topic_namespace),
        aggregate_type=DLQ,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        retention_ms=settings.topic_retention_ms,
        event_types=(),
        key="the original key",
    )


TRACKING = "tracking"  # not an aggregate: browsers' actions, sent by the API (api/analytics)
TRACKING_EVENT_TYPES = (
    "tracking.page_view",
    "tracking.ticket_selected",
    "tracking.checkout_started",
)


def tracking_topic(settings: Settings) -> Topic:
    """``<namespace>.tracking.v1``: tracked actions, produced straight by the API (not through
    the outbox), keyed by the event id; one schema for all three types
    (``domain/schemas/tracking.v1.json``)."""
    return Topic(
        name=topic_name(TRACKING, settings.topic_namespace),
        aggregate_type=TRACKING,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        retention_ms=settings.topic_retention_ms,
        event_types=TRACKING_EVENT_TYPES,
        key="event_id",
    )


def ensure_topics(bootstrap: str, topics: list[Topic], timeout_ms: int = 10_000) -> list[str]:
    """Create the topics that do not exist yet; return their names. Idempotent, and safe to
    race with another relay (an "already exists" answer counts as done). An existing topic is
    never altered: a different partition count is logged, since changing it would move keys."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="aqstream-topics",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        created = []
        for topic in missing:  # one by one: an "already exists" must not hide another failure
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            topic.name,
                            topic.partitions,
                            topic.replication_factor,
                            topic_configs=topic.configs(),
                        )
                    ],
                    timeout_ms=timeout_ms,
                )
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        present = [t for t in topics if t.name in existing]
        if present:
            described = admin.describe_topics([t.name for t in present])
            partitions = {d["name"]: len(d["partitions"]) for d in described}
            for topic in present:
                if partitions.get(topic.name, topic.partitions) != topic.partitions:
                    log.warning(
                        "topic_partitions_differ",
                        topic=topic.name,
                        catalog=topic.partitions,
                        broker=partitions[topic.name],
                    )
        return created
    finally:
        admin.close()
