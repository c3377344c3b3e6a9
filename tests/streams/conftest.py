"""Fixtures of the streaming tests: relays on the session's database and broker, each test run
on topics of its own namespace, outbox rows written fast, and topics read back in full."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text

from core.settings import Settings
from domain.db import uuid7
from streams.relay import Relay, RelayMetrics, psycopg_dsn
from streams.topics import topic_name


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    """Fast-paced relay settings, topics in a namespace of this test's own."""
    return settings.model_copy(
        update={
            "topic_namespace": f"aqtest-{uuid.uuid4().hex[:10]}",
            "relay_poll_interval_s": 0.2,
            "relay_stats_interval_s": 0.2,
            "relay_publish_timeout_s": 3.0,
            "relay_backoff_max_s": 0.5,
            "relay_metrics_port": 0,
        }
    )


@pytest.fixture
def owner_conn(settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(psycopg_dsn(settings), autocommit=True) as conn:
        yield conn


@dataclass
class Written:
    """Outbox rows written by a test, in the order each aggregate's rows were written."""

    by_aggregate: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def ids(self) -> set[str]:
        return {i for ids in self.by_aggregate.values() for i in ids}


def write_events(
    conn: psycopg.Connection,
    aggregates: list[uuid.UUID],
    per_aggregate: int,
    written: Written | None = None,
    *,
    per_transaction: int = 50,
) -> Written:
    """``per_aggregate`` registration.confirmed rows for each aggregate, interleaved across
    aggregates, committed ``per_transaction`` rows at a time (as the owner: this is about the
    relay, not about how the application writes)."""
    written = written or Written()
    rows = []
    for n in range(per_aggregate):
        for aggregate in aggregates:
            event_id = uuid7()
            payload = {
                "aggregate_id": str(aggregate),
                "tenant_id": None,
                "registration_id": str(aggregate),
                "event_id": str(uuid.UUID(int=n)),  # the n-th event of its aggregate
                "user_id": str(aggregate),
                "quantity": n + 1,
            }
            rows.append((event_id, aggregate, Jsonb(payload)))
            written.by_aggregate[str(aggregate)].append(str(event_id))
    for start in range(0, len(rows), per_transaction):
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, headers)"
                " VALUES (%s, 'registration', %s, 'registration.confirmed', %s,"
                ' \'{"correlation_id": "test-cid"}\')',
                rows[start : start + per_transaction],
            )
    return written


def unsent(conn: psycopg.Connection, ids: set[str]) -> int:
    return conn.execute(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND id = ANY(%s)",
        ([uuid.UUID(i) for i in ids],),
    ).fetchone()[0]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Record:
    key: str
    partition: int
    offset: int
    headers: dict[str, str]
    value: dict


def read_topic(
    bootstrap: str, topic: str, expect_ids: set[str], timeout: float = 30.0
) -> list[Record]:
    """Every record of ``topic`` from the start, until each of ``expect_ids`` was seen (the
    broker's reported end offsets are not to be trusted), in partition then offset order."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        deadline = time.monotonic() + timeout
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic) or set()
        assert partitions, f"topic {topic} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list[Record] = []
        seen: set[str] = set()
        while not expect_ids <= seen:
            if time.monotonic() > deadline:
                missing = len(expect_ids - seen)
                pytest.fail(f"{missing} of {len(expect_ids)} records never reached {topic}")
            for tp, batch in consumer.poll(timeout_ms=200).items():
                for r in batch:
                    headers = {k: v.decode() for k, v in r.headers}
                    records.append(
                        Record(r.key.decode(), tp.partition, r.offset, headers, json.loads(r.value))
                    )
                    seen.add(headers["event_id"])
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def check_order(records: list[Record], written: Written) -> int:
    """Every written row arrived, each aggregate's in the order written, all of one aggregate in
    one partition (counting first arrivals: at least once allows repeats). Returns repeats."""
    firsts: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    partitions: dict[str, set[int]] = defaultdict(set)
    repeats = 0
    for record in records:
        event_id = record.headers["event_id"]
        if record.key not in written.by_aggregate:
            continue  # rows of other tests in the session database
        partitions[record.key].add(record.partition)
        if event_id in seen:
            repeats += 1
            continue
        seen.add(event_id)
        firsts[record.key].append(event_id)
    for aggregate, expected in written.by_aggregate.items():
        assert firsts[aggregate] == expected, f"aggregate {aggregate}: out of order or missing"
        assert len(partitions[aggregate]) == 1, f"aggregate {aggregate} spread over partitions"
    return repeats


class RelayThread:
    """A relay running in a thread of the test process (each with its own database sessions and
    producer, as a relay process has)."""

    def __init__(self, settings: Settings, name: str) -> None:
        self.metrics = RelayMetrics()
        self.relay = Relay(settings, metrics=self.metrics, name=name)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.relay.run(self.stop_event)
        except BaseException as exc:
            self.error = exc

    def start(self) -> RelayThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "relay did not stop"
        assert self.error is None, f"relay failed: {self.error!r}"


@pytest.fixture
def relays(owner_engine: Engine) -> Iterator[Callable[[Settings, str], RelayThread]]:
    """Start relays on the test database. The rows earlier tests left unsent are marked sent
    first, so a test's relays publish that test's rows, not the backlog of the whole suite so
    far (on a slow machine the worker was still sending the dashboards tests' tickets when an
    e-mail test's wait ran out). Rows this test writes, before or after starting a relay, are
    all published."""
    with owner_engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL"))
    started: list[RelayThread] = []

    def start(settings: Settings, name: str) -> RelayThread:
        started.append(RelayThread(settings, name).start())
        return started[-1]

    yield start
    for relay in started:
        if relay.thread.is_alive():
            relay.stop_event.set()
            relay.thread.join(timeout=30)


def topic_of(settings: Settings, aggregate_type: str = "registration") -> str:
    return topic_name(aggregate_type, settings.topic_namespace)
