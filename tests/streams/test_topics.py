"""The topic catalog, and creating its topics on the broker."""

from __future__ import annotations

import threading
import uuid

from kafka.admin import KafkaAdminClient

from core.settings import Settings
from streams.contracts import event_classes
from streams.topics import catalog, ensure_topics, topic_name


def test_one_topic_per_aggregate_type_of_the_domain_events() -> None:
    topics = catalog(Settings.model_construct())
    aggregate_types = {cls.aggregate_type for cls in event_classes()}
    assert {t.aggregate_type for t in topics} == aggregate_types
    by_type = {t.aggregate_type: t for t in topics}
    assert by_type["registration"].name == "aqstream.registration.v1"
    assert {"registration.created", "checkin.completed"} <= set(by_type["registration"].event_types)
    for cls in event_classes():
        assert cls.event_type in by_type[cls.aggregate_type].event_types
    for topic in topics:
        # 4 = what the local broker and the compose Kafka give an auto-created topic.
        assert topic.partitions == 4
        assert topic.key == "aggregate_id"
        assert topic.configs() == {"retention.ms": "604800000", "cleanup.policy": "delete"}


def test_the_namespace_prefixes_every_topic(settings: Settings) -> None:
    topics = catalog(settings.model_copy(update={"topic_namespace": "staging"}))
    assert all(t.name.startswith("staging.") and t.name.endswith(".v1") for t in topics)
    assert topic_name("payment", "staging") == "staging.payment.v1"


def test_topics_are_created_once_even_by_racing_relays(settings: Settings) -> None:
    namespace = f"aqtest-{uuid.uuid4().hex[:10]}"
    topics = catalog(settings.model_copy(update={"topic_namespace": namespace}))
    created: list[list[str]] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            created.append(ensure_topics(settings.kafka_bootstrap, topics))
        except BaseException as exc:
            errors.append(exc)

    racers = [threading.Thread(target=create) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert errors == []
    assert sorted(name for names in created for name in names) == sorted(t.name for t in topics)
    assert ensure_topics(settings.kafka_bootstrap, topics) == []  # all there: nothing to do

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        described = admin.describe_topics([t.name for t in topics])
    finally:
        admin.close()
    assert {d["name"]: len(d["partitions"]) for d in described} == {t.name: 4 for t in topics}


def test_the_worker_creates_every_topic_it_reads_with_the_promised_partitions(
    settings: Settings,
) -> None:
    """Four partitions or more for every domain topic, the tracking topic and the dead letters:
    up to four workers share the load (docs/operations.md)."""
    from streams.topics import dlq_topic, tracking_topic
    from streams.worker import ensure_worker_topics

    ours = settings.model_copy(update={"topic_namespace": f"aqtest-{uuid.uuid4().hex[:10]}"})
    ensure_worker_topics(ours)
    names = [t.name for t in (*catalog(ours), tracking_topic(ours), dlq_topic(ours))]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        described = admin.describe_topics(names)
    finally:
        admin.close()
    assert sorted(d["name"] for d in described) == sorted(names)
    assert all(len(d["partitions"]) >= 4 for d in described), described
