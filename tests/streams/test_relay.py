"""The outbox relay against the session's PostgreSQL and broker: what a record carries, how
the relay wakes up, two relays side by side, metrics, pruning, and what its role may do."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from prometheus_client import start_http_server
from psycopg import sql
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from aqstream.cli import app
from domain.db import uuid7
from streams.relay import LOCK_SPACE, Relay, RelayMetrics, _uuid7_floor
from tests.streams.conftest import (
    Written,
    check_order,
    read_topic,
    topic_of,
    unsent,
    wait_until,
    write_events,
)


def test_publishes_rows_with_key_headers_and_payload_and_marks_them_sent(
    relay_settings, owner_conn, relays
) -> None:
    aggregates = [uuid.uuid4() for _ in range(5)]
    written = write_events(owner_conn, aggregates, 3)
    relay = relays(relay_settings, "r1")
    wait_until(lambda: unsent(owner_conn, written.ids) == 0, 20, "rows marked sent")
    relay.stop()
    topic = topic_of(relay_settings)
    records = read_topic(relay_settings.kafka_bootstrap, topic, written.ids)
    assert check_order(records, written) == 0
    mine = [r for r in records if r.key in written.by_aggregate]
    assert len(mine) == 15
    first = mine[0]
    row = owner_conn.execute(
        "SELECT aggregate_id, occurred_at, payload FROM outbox WHERE id = %s",
        (uuid.UUID(first.headers["event_id"]),),
    ).fetchone()
    assert first.key == str(row[0])
    assert first.value == row[2]
    assert datetime.fromisoformat(first.headers["occurred_at"]) == row[1]
    assert first.headers == {
        "event_id": first.headers["event_id"],
        "event_type": "registration.confirmed",
        "schema_version": "1",
        "aggregate_type": "registration",
        "tenant_id": "",
        "correlation_id": "test-cid",
        "occurred_at": first.headers["occurred_at"],
        "content_type": "application/json",
    }
    published = relay.metrics.registry.get_sample_value(
        "aqstream_relay_published_total", {"topic": topic}
    )
    assert published >= 15  # and rows other tests left in the session's outbox


def test_an_event_written_through_the_unit_of_work_reaches_its_topic(
    relay_settings, owner_conn, relays, api
) -> None:
    """The whole path: an API sign-up raises user.registered in its transaction; the relay
    publishes it to the user topic, tenant-less, with the request's correlation id."""
    user = api.register("streamer")
    user_id = user["user"]["id"]
    event_id = owner_conn.execute(
        "SELECT id::text FROM outbox WHERE event_type = 'user.registered' AND aggregate_id = %s",
        (user_id,),
    ).fetchone()[0]
    relay = relays(relay_settings, "r1")
    records = read_topic(
        relay_settings.kafka_bootstrap, topic_of(relay_settings, "user"), {event_id}
    )
    relay.stop()
    record = next(r for r in records if r.headers["event_id"] == event_id)
    assert record.key == user_id
    assert record.value["user_id"] == user_id
    assert record.value["email"] == user["email"]
    assert record.headers["event_type"] == "user.registered"
    assert record.headers["correlation_id"]  # set by the API's correlation id middleware


def test_notify_wakes_an_idle_relay_and_a_missed_notify_loses_nothing(
    relay_settings, owner_conn, relays
) -> None:
    settings = relay_settings.model_copy(update={"relay_poll_interval_s": 60.0})
    relay = relays(settings, "r1")
    first = write_events(owner_conn, [uuid.uuid4()], 1)
    wait_until(lambda: unsent(owner_conn, first.ids) == 0, 10, "the first row")

    # No NOTIFY for this one: the relay, idle for a minute, does not see it ...
    quiet = Written()
    with owner_conn.transaction():
        owner_conn.execute("SET LOCAL aqstream.outbox_notify = off")
        write_events(owner_conn, [uuid.uuid4()], 1, quiet)
    time.sleep(1.5)
    assert unsent(owner_conn, quiet.ids) == 1
    # ... until the next notification, which gets it published along with the new row.
    loud = write_events(owner_conn, [uuid.uuid4()], 1)
    wait_until(lambda: unsent(owner_conn, quiet.ids | loud.ids) == 0, 5, "a woken relay")
    relay.stop()


def test_polling_finds_rows_without_any_notification(relay_settings, owner_conn, relays) -> None:
    relay = relays(relay_settings.model_copy(update={"relay_poll_interval_s": 0.3}), "r1")
    quiet = Written()
    with owner_conn.transaction():
        owner_conn.execute("SET LOCAL aqstream.outbox_notify = off")
        write_events(owner_conn, [uuid.uuid4() for _ in range(3)], 2, quiet)
    wait_until(lambda: unsent(owner_conn, quiet.ids) == 0, 5, "a polling relay")
    relay.stop()


def test_an_aggregate_held_by_one_relay_is_skipped_by_another(relay_settings, owner_conn) -> None:
    """While relay A holds aggregate X (its batch not yet marked), relay B publishes the other
    aggregates and none of X's rows, not even rows of X written after A claimed; once A lets go,
    B publishes X's rows, oldest first."""
    x, y = uuid.uuid4(), uuid.uuid4()
    written = write_events(owner_conn, [x, y], 2)
    b = Relay(relay_settings, metrics=RelayMetrics(), name="b")
    with psycopg.connect(owner_conn.info.dsn, password=owner_conn.info.password) as a:
        a.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(relay_settings.relay_db_role)))
        a.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_SPACE, str(x)))
        write_events(owner_conn, [x], 2, written)
        while b.relay_once():
            pass
        assert unsent(owner_conn, set(written.by_aggregate[str(y)])) == 0
        assert unsent(owner_conn, set(written.by_aggregate[str(x)])) == 4
        a.rollback()  # A's batch is given up: its rows stay unsent
    while b.relay_once():
        pass
    b.close()
    assert unsent(owner_conn, written.ids) == 0
    records = read_topic(relay_settings.kafka_bootstrap, topic_of(relay_settings), written.ids)
    assert check_order(records, written) == 0


def test_two_relays_keep_every_aggregates_order(relay_settings, owner_conn, relays) -> None:
    """Four writers (each owning its aggregates, as a row lock would make them) and two relays
    with small batches, all at once: every row arrives once, each aggregate's in order."""
    settings = relay_settings.model_copy(update={"relay_batch_size": 40})
    aggregates = [uuid.uuid4() for _ in range(240)]
    written = Written()
    one, two = relays(settings, "one"), relays(settings, "two")

    def writer(mine: list[uuid.UUID]) -> None:
        with psycopg.connect(owner_conn.info.dsn, password=owner_conn.info.password) as conn:
            conn.autocommit = True
            for _ in range(10):
                write_events(conn, mine, 1, written, per_transaction=7)

    writers = [threading.Thread(target=writer, args=(aggregates[i::4],)) for i in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert len(written.ids) == 2400
    wait_until(lambda: unsent(owner_conn, written.ids) == 0, 60, "both relays")
    one.stop()
    two.stop()
    assert one.relay.published_total > 0 and two.relay.published_total > 0, "one relay idled"
    records = read_topic(relay_settings.kafka_bootstrap, topic_of(relay_settings), written.ids)
    assert check_order(records, written) == 0  # no record published by both relays


def test_metrics_report_backlog_age_and_rate_over_http(relay_settings, owner_conn) -> None:
    metrics = RelayMetrics()
    server, thread = start_http_server(0, "127.0.0.1", metrics.registry)
    relay = Relay(relay_settings, metrics=metrics)
    try:
        while relay.relay_once():  # whatever earlier tests left
            pass
        written = write_events(owner_conn, [uuid.uuid4() for _ in range(4)], 3)
        time.sleep(0.1)
        backlog, age = relay.refresh_stats()
        assert backlog >= 12 and age > 0.1
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        body = httpx.get(url, timeout=5).text
        assert f"aqstream_relay_backlog {float(backlog)}" in body
        assert "aqstream_relay_oldest_unsent_age_seconds" in body
        while relay.relay_once():
            pass
        assert unsent(owner_conn, written.ids) == 0
        assert relay.refresh_stats() == (0, 0.0)
        body = httpx.get(url, timeout=5).text
        assert "aqstream_relay_backlog 0.0" in body
        topic = topic_of(relay_settings)
        assert f'aqstream_relay_published_total{{topic="{topic}"}}' in body
        assert "aqstream_relay_lag_seconds_count" in body
        assert "aqstream_relay_broker_up 1.0" in body
    finally:
        relay.close()
        server.shutdown()
        thread.join(timeout=5)


def _insert_at(conn: psycopg.Connection, moment: datetime, sent_at: datetime | None) -> str:
    """An outbox row whose id was made at ``moment`` (UUIDv7 layout), sent at ``sent_at``."""
    event_id = uuid.UUID(int=_uuid7_floor(moment).int | (uuid7().int & ((1 << 80) - 1)))
    conn.execute(
        "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, sent_at)"
        " VALUES (%s, 'registration', %s, 'registration.confirmed', %s, %s)",
        (event_id, uuid.uuid4(), Jsonb({}), sent_at),
    )
    return str(event_id)


def test_sent_rows_are_pruned_after_the_retention_period(relay_settings, owner_conn) -> None:
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=8)
    with owner_conn.transaction():
        old_sent = {
            _insert_at(owner_conn, long_ago, long_ago + timedelta(seconds=1)) for _ in range(3)
        }
        kept = {
            _insert_at(owner_conn, long_ago, None),  # never sent: never pruned
            _insert_at(owner_conn, long_ago, now - timedelta(days=1)),  # sent recently
            _insert_at(owner_conn, now, None),
        }
    relay = Relay(relay_settings.model_copy(update={"relay_retention_s": 7 * 24 * 3600}))
    try:
        assert relay.prune() == 3
        assert relay.metrics.registry.get_sample_value("aqstream_relay_pruned_total") == 3
    finally:
        relay.close()
    left = {
        r[0]
        for r in owner_conn.execute(
            "SELECT id::text FROM outbox WHERE id = ANY(%s::uuid[])", (list(old_sent | kept),)
        )
    }
    assert left == kept
    owner_conn.execute("DELETE FROM outbox WHERE id = ANY(%s::uuid[])", (list(kept),))


def test_the_relay_role_reads_marks_and_prunes_the_outbox_and_nothing_else(
    relay_settings, owner_conn
) -> None:
    role = sql.Identifier(relay_settings.relay_db_role)
    dsn, password = owner_conn.info.dsn, owner_conn.info.password
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(role))  # for the session, as the relay does
        assert conn.execute("SELECT current_user").fetchone()[0] == relay_settings.relay_db_role
        conn.execute("SELECT count(*) FROM outbox").fetchone()  # every tenant's rows
        conn.execute("UPDATE outbox SET sent_at = sent_at WHERE false")
        conn.execute("DELETE FROM outbox WHERE false")
        for statement in (
            "UPDATE outbox SET payload = payload WHERE false",
            "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)"
            " VALUES (gen_random_uuid(), 'x', gen_random_uuid(), 'x', '{}')",
            "SELECT count(*) FROM users",
            "SELECT count(*) FROM inbox",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_relay_once_from_the_command_line(
    relay_settings, owner_conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AQSTREAM_DATABASE_URL": relay_settings.owner_url.render_as_string(hide_password=False),
        "AQSTREAM_KAFKA_BOOTSTRAP": relay_settings.kafka_bootstrap,
        "AQSTREAM_REDIS_URL": relay_settings.redis_url,
        "AQSTREAM_S3_ENDPOINT": relay_settings.s3_endpoint,
        "AQSTREAM_TOPIC_NAMESPACE": relay_settings.topic_namespace,
    }.items():
        monkeypatch.setenv(name, value)
    written = write_events(owner_conn, [uuid.uuid4() for _ in range(3)], 2)
    result = CliRunner().invoke(app, ["relay", "--once"])
    assert result.exit_code == 0, result.output
    assert "published" in result.output
    assert unsent(owner_conn, written.ids) == 0
    records = read_topic(relay_settings.kafka_bootstrap, topic_of(relay_settings), written.ids)
    assert check_order(records, written) == 0
