"""Each server the platform depends on is real and does its job."""

from __future__ import annotations

import time
import uuid

import httpx
import redis
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from sqlalchemy import Engine, text

from core.resources import make_redis, make_s3
from core.settings import Settings


def test_row_written_as_app_role_is_read_back_on_a_second_connection(app_engine: Engine) -> None:
    event_id = uuid.uuid4()
    with app_engine.connect() as writer:
        assert writer.execute(text("SELECT current_user")).scalar() == "aqstream_app"
        writer.execute(
            text("INSERT INTO inbox (consumer, event_id) VALUES ('test', :id)"), {"id": event_id}
        )
        writer.commit()
    with app_engine.connect() as reader:
        # A separate pooled connection would be fine too; force a brand-new one to be sure.
        reader.invalidate()
    with app_engine.connect() as reader:
        row = reader.execute(
            text("SELECT consumer FROM inbox WHERE event_id = :id"), {"id": event_id}
        ).one()
        assert row.consumer == "test"


def test_app_role_owns_nothing_and_cannot_bypass_rls(owner_engine: Engine, settings: Settings):
    with owner_engine.connect() as conn:
        role = conn.execute(
            text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin "
                "FROM pg_roles WHERE rolname = :r"
            ),
            {"r": settings.app_db_user},
        ).one()
        assert tuple(role) == (False, False, False, False, True)
        owned = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = :r"
            ),
            {"r": settings.app_db_user},
        ).scalar()
        assert owned == 0


def test_app_role_cannot_create_tables(app_engine: Engine) -> None:
    import pytest
    from sqlalchemy.exc import ProgrammingError

    with app_engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("CREATE TABLE sneaky (id int)"))


def test_app_role_may_only_append_to_the_outbox(app_engine: Engine) -> None:
    import pytest
    from sqlalchemy.exc import ProgrammingError

    with app_engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) "
                "VALUES (:id, 'test', :id, 'test.happened', '{}')"
            ),
            {"id": uuid.uuid4()},
        )
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT * FROM outbox"))
        conn.rollback()


def test_kafka_message_is_consumed_in_a_consumer_group(settings: Settings) -> None:
    bootstrap = settings.kafka_bootstrap
    topic = f"test.services.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=b"k1", value=b"hello", headers=[("h", b"v")]).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-group-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=100,
        consumer_timeout_ms=20_000,
    )
    try:
        record = next(iter(consumer))
        assert (record.key, record.value, record.headers) == (b"k1", b"hello", [("h", b"v")])
        consumer.commit()
        committed = consumer.committed(record_partition(record))
        assert committed == record.offset + 1
    finally:
        consumer.close()


def record_partition(record):
    from kafka import TopicPartition

    return TopicPartition(record.topic, record.partition)


def test_redis_set_get_with_ttl(settings: Settings) -> None:
    client: redis.Redis = make_redis(settings)
    key = f"test:{uuid.uuid4().hex}"
    client.set(key, "value", px=300)
    assert client.get(key) == b"value"
    assert 0 < client.pttl(key) <= 300
    time.sleep(0.4)
    assert client.get(key) is None
    client.close()


def test_s3_object_round_trip_through_presigned_urls(settings: Settings) -> None:
    s3 = make_s3(settings)
    key = f"tests/{uuid.uuid4().hex}.txt"
    body = b"aqstream round trip \x00\xff"
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": settings.s3_bucket, "Key": key}, ExpiresIn=60
    )
    assert httpx.put(put_url, content=body).status_code == 200
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": settings.s3_bucket, "Key": key}, ExpiresIn=60
    )
    response = httpx.get(get_url)
    assert response.status_code == 200
    assert response.content == body
    s3.delete_object(Bucket=settings.s3_bucket, Key=key)
    assert httpx.get(get_url).status_code == 404
