"""The stream worker (`aqstream worker`): a Faust app whose agents react to the domain topics.

Three agents; the first two are thin loops over single records (decode the record, call the
domain, deduplicated by event id):

- ``payment-saga`` (registration, payment and event topics): the steps of
  ``domain/payment/saga.py``, each in ONE unit of work in the event's tenant together with an
  inbox row ``(worker.payment-saga, event id)``: a redelivered record finds the row and changes
  nothing. The steps are idempotent by the state they find as well, so running one after the
  webhook path already did (a completed payment confirms its registration at once) is harmless.
- ``notifications`` (every topic carrying a type of ``HANDLED_EVENT_TYPES``):
  ``domain.notification.service.handle`` queues the messages (deduplicated by source event id in
  the notification log), commits, then ``delivery.deliver`` sends what of this event is still
  queued and due, so a record redelivered after a crash between commit and sending still sends.

- ``analytics`` (the tracking topic and the topics of the counted events) takes batches:
  records to warehouse facts, one transaction per batch (``streams/analytics.py``).

Database work runs in a thread (``asyncio.to_thread``): it blocks, and the consumer's heartbeats
and fetches must go on meanwhile. A failing record is retried with exponential backoff
(tenacity); after ``AQSTREAM_WORKER_RETRY_ATTEMPTS`` tries it is published to the dead-letter
topic ``<namespace>.dlq.v1`` with its original key, value and headers plus ``dlq_*`` headers, and
the stream moves on. ``replay_dead_letters`` (``aqstream dlq replay``) sends dead letters back to
their topics, addressed to the agent that failed (header ``replay_for``).

Offsets are committed every ``AQSTREAM_WORKER_COMMIT_INTERVAL_S`` for records handled: at least
once, so after a crash the records since the last commit come again, and the inbox and the
notification log make that harmless.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import json
import time
import traceback
import uuid
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from core.logging import get_logger
from core.settings import Settings
from domain.notification import delivery
from domain.notification.channels import Channels
from domain.notification.models import Notification, NotificationStatus
from domain.notification.service import HANDLED_EVENT_TYPES, handle
from domain.payment import saga
from domain.payment.providers import Providers
from domain.registration import service as registrations
from domain.registration.models import Registration, RegistrationStatus
from domain.uow import UnitOfWork
from streams.topics import catalog, dlq_topic, ensure_topics, tracking_topic

log = get_logger(__name__)

SAGA = "payment-saga"
NOTIFICATIONS = "notifications"
REPLAY_FOR = "replay_for"  # header of a replayed dead letter: the one agent it is meant for
ERROR_CHARS = 4000

_INBOX = text(
    "INSERT INTO inbox (consumer, event_id) VALUES (:consumer, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A consumed record as the relay wrote it: UTF-8 headers, a JSON value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, event: Any) -> Record:
        """The record of a Faust event."""
        return cls.of_message(event.message)

    @classmethod
    def of_message(cls, message: Any) -> Record:
        """The record of a consumed message (Faust's, or aiokafka's ``ConsumerRecord``)."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=decode_headers(message.headers or ()),
        )

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(self.headers["event_id"])

    @property
    def event_type(self) -> str:
        return self.headers.get("event_type", "")

    @property
    def tenant_id(self) -> uuid.UUID | None:
        value = self.headers.get("tenant_id")
        return uuid.UUID(value) if value else None

    def payload(self) -> dict[str, Any]:
        return json.loads(self.value)

    def outbox_headers(self) -> dict[str, str]:
        """Headers for the events this record causes: its correlation id goes on."""
        cid = self.headers.get("correlation_id")
        return {"correlation_id": cid} if cid else {}


def decode_headers(headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {
        name: value.decode() if isinstance(value, bytes) else str(value) for name, value in pairs
    }


@dataclass
class Deps:
    """What the agents need, built once at start-up."""

    settings: Settings
    sessions: sessionmaker[Session]
    providers: Providers
    channels: Channels
    # The analytics' sessions: the warehouse role's (warehouse.engine), not the application's.
    warehouse: sessionmaker[Session] | None = None
    sink: Callable[..., Any] | None = None  # the analytics agent's (default: warehouse.sink.ingest)


# --- the payment saga --------------------------------------------------------------------------


def cancel_event_registrations(uow: UnitOfWork, event_id: uuid.UUID) -> int:
    """event.cancelled: every live registration of the event is cancelled and its seats freed
    (a checked-in one stays). Its money goes back through ``saga.refund_event_payments``."""
    ids = uow.session.scalars(
        select(Registration.id).where(
            Registration.event_id == event_id,
            Registration.status.in_(
                (RegistrationStatus.CONFIRMED, RegistrationStatus.PENDING_PAYMENT)
            ),
            Registration.checked_in_at.is_(None),
        )
    ).all()
    for registration_id in ids:
        registrations.cancel(uow, registration_id, reason="event_cancelled")
    return len(ids)


def _saga_step(deps: Deps, uow: UnitOfWork, event_type: str, p: dict[str, Any]) -> str | None:
    """Run the saga step of ``event_type``; answer what it did (None: not a saga event)."""
    if event_type == "registration.created":
        if p.get("status") != RegistrationStatus.PENDING_PAYMENT.value:
            return "skipped"  # free or already paid: nothing to pay
        payment = saga.initiate_payment_for_registration(
            uow, deps.providers, uuid.UUID(p["registration_id"])
        )
        return "initiated" if payment is not None else "unchanged"
    if event_type == "payment.completed":
        done = saga.confirm_registration_on_payment(uow, uuid.UUID(p["payment_id"]))
        return "applied" if done is not None else "unchanged"
    if event_type == "payment.failed":
        done = saga.release_seat_on_payment_failure(uow, uuid.UUID(p["payment_id"]))
        return "released" if done is not None else "unchanged"
    if event_type == "payment.refunded":
        if p.get("partial"):
            return "skipped"
        done = saga.cancel_registration_if_refunded(uow, uuid.UUID(p["registration_id"]))
        return "cancelled" if done is not None else "unchanged"
    if event_type == "event.cancelled":
        event_id = uuid.UUID(p["event_id"])
        refunds = saga.refund_event_payments(uow, event_id)
        cancelled = cancel_event_registrations(uow, event_id)
        return f"refunds={len(refunds)} cancelled={cancelled}"
    return None


SAGA_EVENT_TYPES = (
    "registration.created",
    "payment.completed",
    "payment.failed",
    "payment.refunded",
    "event.cancelled",
)


def run_saga_step(deps: Deps, record: Record, consumer: str = f"worker.{SAGA}") -> str:
    """One record of the saga in one transaction, with its inbox row (blocking)."""
    with UnitOfWork(
        deps.sessions, tenant_id=record.tenant_id, headers=record.outbox_headers
    ) as uow:
        fresh = uow.session.execute(
            _INBOX, {"consumer": consumer, "event_id": record.event_id}
        ).first()
        if fresh is None:
            return "duplicate"
        outcome = _saga_step(deps, uow, record.event_type, record.payload())
        uow.commit()
        return outcome or "ignored"


async def saga_handler(deps: Deps, record: Record) -> None:
    if record.event_type not in SAGA_EVENT_TYPES:
        return
    outcome = await asyncio.to_thread(run_saga_step, deps, record)
    log.info(
        "saga_step",
        event_type=record.event_type,
        event_id=str(record.event_id),
        outcome=outcome,
        correlation_id=record.headers.get("correlation_id") or None,
    )


# --- notifications -----------------------------------------------------------------------------


def queue_notifications(deps: Deps, record: Record) -> list[delivery.Pending]:
    """Queue the messages of this record (once), and answer every message of it still queued
    and due: the new ones, and those a crashed worker committed but never sent (blocking)."""
    with UnitOfWork(deps.sessions, headers=record.outbox_headers) as uow:
        handle(uow, record.event_type, record.payload(), record.headers)
        rows = uow.session.scalars(
            select(Notification).where(
                Notification.source_event_id == record.event_id,
                Notification.status == NotificationStatus.QUEUED,
                Notification.due_at <= datetime.now(UTC),
            )
        ).all()
        pending = [delivery.Pending.of(row) for row in rows]
        uow.commit()
    return pending


async def notification_handler(deps: Deps, record: Record) -> None:
    if record.event_type not in HANDLED_EVENT_TYPES:
        return
    pending = await asyncio.to_thread(queue_notifications, deps, record)
    if pending:
        result = await delivery.deliver(deps.sessions, deps.channels, pending)
        log.info(
            "notifications",
            event_type=record.event_type,
            event_id=str(record.event_id),
            sent=result.sent,
            failed=result.failed,
            deferred=result.deferred,
        )


Handler = Callable[[Deps, Record], Awaitable[None]]
AGENTS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    SAGA: (saga_handler, SAGA_EVENT_TYPES),
    NOTIFICATIONS: (notification_handler, HANDLED_EVENT_TYPES),
}


def agent_topics(settings: Settings, event_types: Iterable[str]) -> list[str]:
    """The catalog's topics that carry any of ``event_types``."""
    wanted = set(event_types)
    return [t.name for t in catalog(settings) if wanted & set(t.event_types)]


# --- failures ----------------------------------------------------------------------------------


def observe_many(histogram: Any, amounts: Iterable[float]) -> None:
    """``histogram.observe(a)`` for each of ``amounts`` (a labelled child of a prometheus_client
    ``Histogram``): the same buckets and sum, with one increment per bucket instead of a locked
    update per value (1.7 µs each; the analytics agent observes every fact's lag). The library
    has no batch observe, so this updates what its ``observe`` updates, the child's ``_sum`` and
    ``_buckets`` (a value goes to the first bucket whose upper bound is not below it);
    tests/worker/test_metrics.py compares the two."""
    histogram._raise_if_not_observable()
    amounts = list(amounts)
    bucket_of = functools.partial(bisect.bisect_left, histogram._upper_bounds)
    for bucket, n in Tally(map(bucket_of, amounts)).items():
        histogram._buckets[bucket].inc(n)
    histogram._sum.inc(sum(amounts))


class WorkerMetrics:
    """Prometheus metrics of one worker, in a registry of its own (`aqstream worker` serves it on
    ``AQSTREAM_WORKER_METRICS_PORT``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "aqstream_worker_records",
            "Records handled, by agent and outcome (ok, dead_letter, skipped)",
            ["agent", "outcome"],
            registry=r,
        )
        self.retries = Counter(
            "aqstream_worker_retries", "Tries after a failed one", ["agent"], registry=r
        )
        self.seconds = Histogram(
            "aqstream_worker_record_seconds",
            "Handling one record, retries included",
            ["agent"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.facts = Counter(
            "aqstream_worker_facts",
            "Facts the analytics agent stored (new or again), by kind",
            ["kind"],
            registry=r,
        )
        self.lag = Histogram(
            "aqstream_worker_lag_seconds",
            "From the event's occurred_at to the end of its handling",
            ["agent"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )

    @staticmethod
    def facts_stored(exposition: str) -> int:
        """The facts the analytics stored (new or again, all kinds), read from the text a
        worker's metrics endpoint served."""
        from prometheus_client.parser import text_string_to_metric_families

        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(exposition)
                if family.name == "aqstream_worker_facts"
                for sample in family.samples
                if sample.name == "aqstream_worker_facts_total"
            )
        )


@dataclass
class Processor:
    """Runs one agent's handler on a record: retries with backoff, then the dead-letter topic."""

    deps: Deps
    send: Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]
    dead_letters: int = field(default=0)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    analytics: Any = None  # the analytics agent (streams/analytics.py), set by build_app

    async def process(self, agent: str, handler: Handler, record: Record) -> None:
        target = record.headers.get(REPLAY_FOR)
        if target and target != agent:
            self.metrics.records.labels(agent, "skipped").inc()
            return  # a replayed dead letter of another agent
        started = time.perf_counter()
        try:
            await self._process(agent, handler, record)
        finally:
            self.metrics.seconds.labels(agent).observe(time.perf_counter() - started)
            occurred = _epoch(record.headers.get("occurred_at"))
            if occurred is not None:
                self.metrics.lag.labels(agent).observe(max(0.0, time.time() - occurred))

    async def _process(self, agent: str, handler: Handler, record: Record) -> None:
        s = self.deps.settings
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(s.worker_retry_attempts),
                wait=wait_exponential(multiplier=s.worker_retry_base_s, max=s.worker_retry_max_s),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self.metrics.retries.labels(agent).inc()
                    await handler(self.deps, record)
            self.metrics.records.labels(agent, "ok").inc()
        except Exception as exc:
            self.metrics.records.labels(agent, "dead_letter").inc()
            log.error(
                "dead_letter",
                agent=agent,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_type=record.event_type,
                event_id=record.headers.get("event_id"),
                attempts=attempts,
                error=repr(exc),
            )
            await self._dead_letter(agent, record, exc, attempts)

    async def dead_letter(
        self, agent: str, record: Record, exc: BaseException, attempts: int
    ) -> None:
        """Publish ``record`` to the dead-letter topic (waits until stored)."""
        await self._dead_letter(agent, record, exc, attempts)

    async def _dead_letter(
        self, agent: str, record: Record, exc: BaseException, attempts: int
    ) -> None:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        headers = [
            (k, v.encode())
            for k, v in record.headers.items()
            if not k.startswith("dlq_") and k != REPLAY_FOR
        ]
        headers += [
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_consumer", agent.encode()),
            ("dlq_error", error[:ERROR_CHARS].encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        dlq = dlq_topic(self.deps.settings).name
        delay = 0.1
        while True:  # the offset must not move on before the dead letter is stored
            try:
                await self.send(dlq, record.key, record.value, headers)
                self.dead_letters += 1
                return
            except Exception:
                log.exception("dead_letter_publish_failed", topic=dlq)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.deps.settings.worker_retry_max_s or 1.0)


# --- the Faust app -----------------------------------------------------------------------------


def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


def _fast_fetch_transport(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    """faust-streaming 0.15 hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer;
    Apache Kafka answers a fetch as soon as records arrive, but the Tansu broker only when that
    wait is over, so every record would wait up to 1.5 s there. These subclasses set the
    consumer's wait (read by aiokafka when it starts) from AQSTREAM_WORKER_FETCH_MAX_WAIT_MS."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class FastConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = FastConsumer

    return Transport


class WorkerApp(faust.App):
    fetch_max_wait_ms = 1500
    wait_empty_s = 15.0

    async def _consumer_wait_empty(self, consumer, logger) -> None:  # type: ignore[no-untyped-def]
        """Faust waits, without limit, for every record in flight to be acknowledged before a
        stop or a rebalance; a record buffered by ``take_events`` (the analytics agent) before a
        rebalance may never be, and the worker would hang. Bounded: what is not acknowledged is
        not committed either, and comes again (at least once)."""
        waiting = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        done, _ = await asyncio.wait({waiting}, timeout=self.wait_empty_s)
        if not done:  # Faust's wait swallows cancellation; it ends when the consumer stops
            waiting.cancel()
            log.warning("wait_empty_timeout", seconds=self.wait_empty_s)

    def _new_transport(self):  # type: ignore[no-untyped-def]
        return _fast_fetch_transport(self.fetch_max_wait_ms)(self.conf.broker_consumer, self)


def build_app(deps: Deps) -> tuple[WorkerApp, Processor]:
    """The Faust app with its agents (no I/O until it starts)."""
    s = deps.settings
    assert s.kafka_bootstrap, "AQSTREAM_KAFKA_BOOTSTRAP is not set"
    datadir = s.state_dir / "worker" / s.topic_namespace  # Faust wants one, even without tables
    datadir.mkdir(parents=True, exist_ok=True)
    app = WorkerApp(
        s.worker_group or f"{s.topic_namespace}.worker",  # the consumer group
        broker=[f"kafka://{host.strip()}" for host in s.kafka_bootstrap.split(",")],
        autodiscover=False,
        datadir=str(datadir),
        web_enabled=False,
        topic_disable_leader=True,  # no tables, so no leader topic to create
        topic_partitions=s.topic_partitions,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=s.worker_session_timeout_s,
        broker_heartbeat_interval=s.worker_heartbeat_interval_s,
        broker_rebalance_timeout=s.worker_rebalance_timeout_s,
        broker_commit_interval=s.worker_commit_interval_s,
    )
    app.fetch_max_wait_ms = s.worker_fetch_max_wait_ms
    app.wait_empty_s = s.worker_stop_wait_s

    async def send(topic: str, key: bytes | None, value: bytes, headers) -> None:
        await app.producer.send_and_wait(topic, key, value, None, None, headers)

    processor = Processor(deps, send)
    for name, (handler, event_types) in AGENTS.items():
        channel = app.topic(*agent_topics(s, event_types), key_type=bytes, value_type=bytes)
        app.agent(channel, name=name, concurrency=1)(_agent_loop(processor, name, handler))
    from streams import analytics  # batches, not one record at a time: its own loop

    processor.analytics = analytics.install(app, processor, deps.sink)
    return app, processor


def _agent_loop(processor: Processor, name: str, handler: Handler):
    async def agent(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await processor.process(name, handler, Record.of(event))

    agent.__name__ = agent.__qualname__ = name.replace("-", "_")
    return agent


def ensure_worker_topics(settings: Settings) -> None:
    assert settings.kafka_bootstrap
    topics = [*catalog(settings), tracking_topic(settings), dlq_topic(settings)]
    ensure_topics(settings.kafka_bootstrap, topics)


# --- dead-letter replay ------------------------------------------------------------------------


def _caught_up(consumer, settings: Settings) -> bool:  # type: ignore[no-untyped-def]
    """Whether the consumer has read every partition assigned to it to its end. Only Apache
    Kafka's end offsets are trusted: Tansu reports wrong ones, so there an idle wait decides."""
    assigned = consumer.assignment()
    if settings.kafka_flavor != "kafka" or not assigned:
        return False
    ends = consumer.end_offsets(list(assigned))
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def replay_dead_letters(
    settings: Settings, *, limit: int | None = None, idle_s: float = 3.0
) -> int:
    """Send dead letters back to the topics they came from, addressed to the agent that gave
    up on them (``replay_for``); answer how many. Progress is a consumer group's committed
    offsets (``<namespace>.dlq-replay``): each dead letter is replayed once, the first ``limit``
    not yet replayed, stopping at the topic's end (on Apache Kafka) or when none arrived for
    ``idle_s``."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata

    assert settings.kafka_bootstrap, "AQSTREAM_KAFKA_BOOTSTRAP is not set"
    consumer = KafkaConsumer(
        dlq_topic(settings).name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_namespace}.dlq-replay",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
        session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.worker_heartbeat_interval_s * 1000),
        max_poll_records=1 if limit else 500,
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    replayed = 0
    try:
        last = time.monotonic()
        while limit is None or replayed < limit:
            batches = consumer.poll(timeout_ms=200)
            if not batches:
                if _caught_up(consumer, settings) or (
                    consumer.assignment() and time.monotonic() - last > idle_s
                ):
                    break
                if time.monotonic() - last > idle_s + 30:  # never joined: the broker is away
                    raise TimeoutError("no partition of the dead-letter topic was assigned")
                continue
            for tp, records in batches.items():
                for r in records:
                    if limit is not None and replayed >= limit:
                        break
                    headers = dict(r.headers)
                    topic = headers["dlq_topic"].decode()
                    out = [
                        (k, v) for k, v in r.headers if not k.startswith("dlq_") and k != REPLAY_FOR
                    ]
                    out.append((REPLAY_FOR, headers.get("dlq_consumer", b"")))
                    producer.send(topic, key=r.key, value=r.value, headers=out).get(timeout=30)
                    consumer.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
                    replayed += 1
                    log.info(
                        "dead_letter_replayed",
                        topic=topic,
                        agent=headers.get("dlq_consumer", b"").decode(),
                        event_id=headers.get("event_id", b"").decode(),
                    )
            last = time.monotonic()
        return replayed
    finally:
        producer.close()
        consumer.close()
