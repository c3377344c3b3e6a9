"""The outbox relay: publishes outbox rows to Kafka, at least once, in order per aggregate.

One cycle, in one database transaction (docs/streams.md has the argument in full):

1. **Claim aggregates, not rows.** Look at the oldest unsent rows (``seq`` order) and take a
   transaction-scoped advisory lock on each of their aggregates that no other relay holds
   (``pg_try_advisory_xact_lock``, skipping the held ones), up to a batch's worth.
2. **Read** the unsent rows of exactly those aggregates, oldest first, up to ``batch_size``: for
   each aggregate, a prefix of its unsent rows. The read runs after the locks are granted, so it
   sees every row another relay marked sent before letting go of the aggregate.
3. **Publish** them in ``seq`` order, key = aggregate id, with an idempotent producer that keeps
   one request in flight per connection and retries without limit: within a producer's life the
   broker appends each partition's records in send order, and what it appended is a prefix.
4. **Mark sent** only what the broker acknowledged, per aggregate only up to the first record
   that was not, then commit, which releases the locks.

A relay that dies (``kill -9``) or loses the broker leaves its unacknowledged rows unsent; the
next relay to lock the aggregate publishes them again, from the first unsent one. Consumers may
see a record twice (deduplicate by the ``event_id`` header), but never one of an aggregate before
the ones that precede it. LISTEN/NOTIFY only wakes an idle relay; polling is the truth.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg import sql
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential_jitter,
)

from core.logging import get_logger
from core.settings import Settings
from domain.outbox.records import Row, headers
from streams.producer import make_producer
from streams.topics import catalog, ensure_topics, topic_name

log = get_logger(__name__)

CHANNEL = "aqstream_outbox"  # NOTIFY channel of the outbox insert trigger (sql/versions/0002)
LOCK_SPACE = 0x61717374  # first key of the relay's advisory locks ("aqst"); second: the aggregate
PRUNE_CHUNK = 5_000
LANES = 3  # database sessions per relay: batches in flight at once (relay_available)

_CLAIM = """
SELECT aggregate_id FROM (
    SELECT aggregate_id, min(seq) AS first
    FROM (SELECT aggregate_id, seq FROM outbox WHERE sent_at IS NULL
          ORDER BY seq LIMIT %(scan)s) AS oldest
    GROUP BY aggregate_id
    ORDER BY first
    OFFSET 0  -- a fence: the lock below is tried in this order, and only until LIMIT is met
) AS candidates
WHERE pg_try_advisory_xact_lock(%(space)s, hashtext(aggregate_id::text))
LIMIT %(aggregates)s
"""

# Everything as text, as it goes on the wire: no UUID or datetime objects on the hot path.
_READ = """
SELECT id::text, aggregate_type, aggregate_id::text, event_type, schema_version::text,
       coalesce(tenant_id::text, ''), payload::text, coalesce(headers->>'correlation_id', ''),
       to_json(occurred_at)#>>'{}', extract(epoch FROM occurred_at)::float8
FROM outbox
WHERE sent_at IS NULL AND aggregate_id = ANY(%(aggregates)s)
ORDER BY seq
LIMIT %(batch)s
"""

_MARK = "UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY(%s::uuid[])"

_STATS = """
SELECT count(*),
       extract(epoch FROM clock_timestamp() - (SELECT occurred_at FROM outbox
                                               WHERE sent_at IS NULL ORDER BY seq LIMIT 1))
FROM outbox WHERE sent_at IS NULL
"""

_PRUNE = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE id < %(below)s AND sent_at < %(cutoff)s ORDER BY id LIMIT %(n)s
)
"""


class PublishFailed(RuntimeError):
    """The broker did not acknowledge every record of a batch in time (or refused one)."""


class RelayMetrics:
    """Prometheus metrics of one relay, in a registry of its own (several relays may share a
    process in tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.published = Counter(
            "aqstream_relay_published", "Records acknowledged by the broker", ["topic"], registry=r
        )
        self.backlog = Gauge("aqstream_relay_backlog", "Unsent outbox rows", registry=r)
        self.oldest_age = Gauge(
            "aqstream_relay_oldest_unsent_age_seconds",
            "Age of the oldest unsent outbox row (0 when none)",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "aqstream_relay_batch_seconds",
            "Claim, publish, acknowledge and mark one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.lag = Histogram(
            "aqstream_relay_lag_seconds",
            "From the writing transaction's start (occurred_at) to the broker's acknowledgement",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 60),
            registry=r,
        )
        self.failures = Counter(
            "aqstream_relay_failures", "Cycles that failed and backed off", ["kind"], registry=r
        )
        self.broker_up = Gauge(
            "aqstream_relay_broker_up", "1 while the last publish went through", registry=r
        )
        self.pruned = Counter("aqstream_relay_pruned", "Sent rows deleted", registry=r)


def _relay_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def _uuid7_floor(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond: ids below it were made before it."""
    return uuid.UUID(int=int(moment.timestamp() * 1000) << 80)


def psycopg_dsn(settings: Settings) -> str:
    return settings.owner_url.set(drivername="postgresql").render_as_string(hide_password=False)


ProducerFactory = Callable[[Settings, str], Any]


def relay_producer(settings: Settings, client_id: str) -> Any:
    """The relay's producer: ordered, acknowledged delivery (see the module docstring)."""
    return make_producer(
        settings, client_id, timeout_s=settings.relay_publish_timeout_s, ordered=True
    )


@dataclass
class _Batch:
    """Rows claimed in ``conn``'s open transaction (which holds their aggregates' locks) and the
    broker futures of those sent so far."""

    conn: psycopg.Connection
    rows: list[Row]
    sent: list[tuple[Row, Any]] = field(default_factory=list)
    failure: BaseException | None = None
    started: float = field(default_factory=time.perf_counter)


def abandon(producer: Any) -> None:
    """Close ``producer`` now, dropping the records it holds: their rows stay unsent and go
    again through the next producer. Whatever the broker already appended of them is, per
    partition, a prefix (one request in flight), so nothing is reordered for a consumer."""
    from kafka.errors import KafkaTimeoutError

    try:
        producer.close(timeout=0)
        return
    except KafkaTimeoutError:
        pass
    # kafka-python 3 flushes before it force-closes, so close(timeout=0) refuses while records
    # are pending (and would refuse again when the object is collected): force the I/O thread
    # to fail them first.
    sender = producer._sender
    sender.force_close()
    sender.join(5)
    producer.close(timeout=0)


class Relay:
    """One relay: ``LANES`` database sessions (batches in flight on the broker while the next
    is claimed), a listener session and a producer; each rebuilt after a failure."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: RelayMetrics | None = None,
        name: str | None = None,
        producer_factory: ProducerFactory = relay_producer,
    ) -> None:
        if settings.kafka_bootstrap is None:
            raise ValueError("kafka_bootstrap is not resolved; start the local stack first")
        self.settings = settings
        self.metrics = metrics or RelayMetrics()
        self.name = name or _relay_name()
        self._producer_factory = producer_factory
        self._dsn = psycopg_dsn(settings)
        self._lanes: list[psycopg.Connection] = []
        self._listen: psycopg.Connection | None = None
        self._producer: Any = None
        self._marker: ThreadPoolExecutor | None = None
        self._topics_ready = False
        self._next_stats = 0.0
        self._next_prune = 0.0
        self.published_total = 0  # rows this relay marked sent (tests, logs)

    # --- connections -----------------------------------------------------------------------
    def _connect(self, autocommit: bool) -> psycopg.Connection:
        conn = psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=5,
            application_name="aqstream-relay",
            options="-c statement_timeout=30000 -c timezone=UTC",
        )
        # Least privilege for everything that follows: read, mark and prune the outbox.
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.settings.relay_db_role)))
        conn.autocommit = autocommit
        return conn

    def _ensure_connected(self) -> None:
        while len(self._lanes) < LANES:
            self._lanes.append(self._connect(autocommit=False))
        if self._listen is None:
            self._listen = self._connect(autocommit=True)
            self._listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        if not self._topics_ready:
            timeout_ms = int(self.settings.relay_publish_timeout_s * 1000)
            ensure_topics(self.settings.kafka_bootstrap, catalog(self.settings), timeout_ms)
            self._topics_ready = True
        if self._producer is None:
            self._producer = self._producer_factory(self.settings, f"aqstream-relay-{self.name}")
        if self._marker is None:
            self._marker = ThreadPoolExecutor(1, thread_name_prefix=f"relay-mark-{self.name}")

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        self._topics_ready = False
        if producer is not None:
            try:
                abandon(producer)
            except Exception:
                log.warning("producer_close_failed", relay=self.name, exc_info=True)

    def _drop_database(self) -> None:
        connections = [*self._lanes, self._listen]
        self._lanes, self._listen = [], None
        for conn in connections:
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    log.warning("db_close_failed", relay=self.name, exc_info=True)

    def _rollback_lanes(self) -> None:
        """Give up the batches in flight: their rows stay unsent, their aggregates free."""
        for conn in self._lanes:
            try:
                conn.rollback()
            except psycopg.Error:
                self._drop_database()
                return

    def close(self) -> None:
        if self._marker is not None:
            self._marker.shutdown(wait=True)
            self._marker = None
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except Exception:
                log.warning("producer_close_failed", relay=self.name, exc_info=True)
            self._producer = None
        self._drop_database()

    # --- batches -----------------------------------------------------------------------------
    def relay_once(self) -> int:
        """Claim, publish and mark one batch; return the number of rows marked sent."""
        self._ensure_connected()
        try:
            batch = self._begin(self._lanes[0])
            return self._finish(batch) if batch is not None else 0
        except BaseException:
            self._rollback_lanes()
            raise

    def relay_available(self) -> int:
        """Publish until less than a full batch is left; return the rows marked sent.

        Pipelined: a helper thread waits for the broker's acknowledgements of a batch and marks
        it, while this thread claims and sends the next ones in the other sessions. Each batch's
        transaction holds its aggregates' locks until that batch is marked, so batches in flight
        never share an aggregate: the order of an aggregate's rows is decided within one batch,
        and a batch is marked before any later row of its aggregates can be claimed."""
        self._ensure_connected()
        assert self._marker is not None
        total = 0
        free = deque(self._lanes)
        finishing: deque[tuple[_Batch, Future[int]]] = deque()
        try:
            while True:
                if not free:
                    oldest, marking = finishing.popleft()
                    total += marking.result()
                    free.append(oldest.conn)
                conn = free.popleft()
                others = bool(finishing)  # their aggregates are skipped by this claim
                batch = self._begin(conn)
                if batch is None:
                    free.append(conn)
                    if not others:
                        break
                    oldest, marking = finishing.popleft()  # then look again
                    total += marking.result()
                    free.append(oldest.conn)
                    continue
                finishing.append((batch, self._marker.submit(self._finish, batch)))
                if len(batch.rows) < self.settings.relay_batch_size and not others:
                    break
            while finishing:
                total += finishing.popleft()[1].result()
        except BaseException:
            for _, marking in finishing:  # the sessions are not to be shared between threads
                wait([marking])
            self._rollback_lanes()
            raise
        return total

    def _begin(self, conn: psycopg.Connection) -> _Batch | None:
        """Claim aggregates, read their unsent rows and send them (not waiting for the broker);
        the transaction stays open. None, with the transaction ended, when there is nothing."""
        size = self.settings.relay_batch_size
        claim = {"scan": 4 * size, "space": LOCK_SPACE, "aggregates": size}
        aggregates = [r[0] for r in conn.execute(_CLAIM, claim).fetchall()]
        if not aggregates:
            conn.rollback()
            return None
        rows = conn.execute(_READ, {"aggregates": aggregates, "batch": size}).fetchall()
        batch = _Batch(conn, [Row(*r) for r in rows])
        self._send(batch)
        return batch

    def _send(self, batch: _Batch) -> None:
        from kafka.errors import KafkaError

        producer = self._producer
        namespace = self.settings.topic_namespace
        for row in batch.rows:
            try:
                future = producer.send(
                    topic_name(row.aggregate_type, namespace),
                    key=row.aggregate_id.encode(),
                    value=row.payload.encode(),
                    headers=headers(row),
                )
            except KafkaError as exc:  # nothing after it is sent: what went out is a prefix
                batch.failure = exc
                return
            batch.sent.append((row, future))

    def _finish(self, batch: _Batch) -> int:
        """Wait for the broker, mark what it acknowledged (per aggregate, up to the first record
        it did not) and commit; raise ``PublishFailed`` afterwards if anything is left."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + self.settings.relay_publish_timeout_s
        for _row, future in batch.sent:
            if not future.is_done:
                with contextlib.suppress(KafkaError):  # judged below, record by record
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
        acked: list[Row] = []
        stalled: set[str] = set()
        failure = batch.failure
        now = time.time()
        per_topic: dict[str, int] = {}
        for row, future in batch.sent:
            if row.aggregate_id in stalled:
                continue
            if future.succeeded():
                acked.append(row)
                per_topic[row.aggregate_type] = per_topic.get(row.aggregate_type, 0) + 1
                self.metrics.lag.observe(max(0.0, now - row.occurred_epoch))
            else:
                stalled.add(row.aggregate_id)
                failure = failure or future.exception or PublishFailed("not acknowledged in time")
        for aggregate_type, count in per_topic.items():
            topic = topic_name(aggregate_type, self.settings.topic_namespace)
            self.metrics.published.labels(topic).inc(count)
        if acked:
            batch.conn.execute(_MARK, ([row.id for row in acked],))
        batch.conn.commit()  # the rows are marked and their aggregates free for any relay
        self.published_total += len(acked)
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        if len(acked) < len(batch.rows):
            raise PublishFailed(
                f"{len(batch.rows) - len(acked)} of {len(batch.rows)} records not acknowledged: "
                f"{failure!r}"
            ) from failure
        self.metrics.broker_up.set(1)
        return len(acked)

    # --- housekeeping --------------------------------------------------------------------------
    def refresh_stats(self) -> tuple[int, float]:
        self._ensure_connected()
        conn = self._lanes[0]
        with conn.transaction():
            backlog, oldest = conn.execute(_STATS).fetchone()
        self.metrics.backlog.set(backlog)
        self.metrics.oldest_age.set(float(oldest or 0.0))
        return backlog, float(oldest or 0.0)

    def prune(self) -> int:
        """Delete rows sent longer than ``relay_retention_s`` ago, in chunks; return how many."""
        self._ensure_connected()
        conn = self._lanes[0]
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.relay_retention_s)
        params = {"below": _uuid7_floor(cutoff), "cutoff": cutoff, "n": PRUNE_CHUNK}
        total = 0
        for _ in range(20):  # at most 100k rows per turn; the next turn takes the rest
            with conn.transaction():
                deleted = conn.execute(_PRUNE, params).rowcount
            total += deleted
            if deleted < PRUNE_CHUNK:
                break
        self.metrics.pruned.inc(total)
        return total

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_stats:
            self._next_stats = now + self.settings.relay_stats_interval_s
            self.refresh_stats()
        if now >= self._next_prune:
            self._next_prune = now + self.settings.relay_prune_interval_s
            pruned = self.prune()
            if pruned:
                log.info("outbox_pruned", relay=self.name, rows=pruned)

    def wait_for_work(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Block until an outbox NOTIFY, ``timeout`` or ``stop``; True when notified."""
        assert self._listen is not None
        deadline = time.monotonic() + timeout
        woken = False
        while not woken and not (stop is not None and stop.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for _ in self._listen.notifies(timeout=min(remaining, 0.25), stop_after=1):
                woken = True
        if woken:  # one look at the outbox serves every notification queued until now
            for _ in self._listen.notifies(timeout=0):
                pass
        return woken

    # --- the loop ------------------------------------------------------------------------------
    def step(self, stop: threading.Event | None = None) -> int:
        """Publish what is there, do the housekeeping that is due, then wait for more."""
        published = self.relay_available()
        self._housekeeping()
        self.wait_for_work(self.settings.relay_poll_interval_s, stop)
        return published

    def _on_failure(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        kind = "database" if isinstance(exc, psycopg.Error) else "broker"
        self.metrics.failures.labels(kind).inc()
        if kind == "database":
            self._drop_database()
        else:
            self.metrics.broker_up.set(0)
            self._drop_producer()
        log.warning(
            "relay_backing_off",
            relay=self.name,
            kind=kind,
            attempt=state.attempt_number,
            sleep_s=round(state.upcoming_sleep, 2),
            error=repr(exc),
        )

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, backing off exponentially while a server is down (the
        backoff starts over after a step that went through)."""
        from kafka.errors import KafkaError

        transient = (KafkaError, PublishFailed, psycopg.OperationalError, OSError)
        retrying = Retrying(
            retry=retry_if_exception_type(transient),
            wait=wait_exponential_jitter(
                multiplier=0.1, jitter=0.2, max=self.settings.relay_backoff_max_s
            ),
            stop=stop_when_event_set(stop),
            sleep=stop.wait,
            before_sleep=self._on_failure,
            reraise=True,
        )
        log.info("relay_started", relay=self.name, batch=self.settings.relay_batch_size)
        try:
            while not stop.is_set():
                try:
                    retrying(self.step, stop)
                except transient:
                    if not stop.is_set():
                        raise
        finally:
            self.close()
            log.info("relay_stopped", relay=self.name, published=self.published_total)
