"""Analytics on the Kafka side: the API's producer of the tracking topic, and the worker's
consumers that turn records into warehouse facts.

**Tracking** (``publish_tracking``): the API sends tracked actions straight to
``<namespace>.tracking.v1`` (no database, no outbox), key = the event id, headers as the relay's,
and answers only once the broker acknowledged every record of the batch (``acks=all``).

**In the worker** two consumers share one ``AnalyticsAgent``: the Faust agent ``analytics``
reads the domain topics carrying the counted event types (``domain.analytics.facts.DOMAIN_KINDS``)
in batches (``stream.take_events``: up to ``AQSTREAM_ANALYTICS_BATCH_MAX`` records or what came
within ``AQSTREAM_ANALYTICS_BATCH_WITHIN_S``), and the tracking service (``tracking_service``, a
service of the same Faust app) reads the high-volume tracking topic with aiokafka and stores it in
``AQSTREAM_ANALYTICS_STORE_CONCURRENCY`` lanes at once (by partition; a lane's batch is what
waited for it, up to ``AQSTREAM_ANALYTICS_BATCH_MAX`` records). Each record is mapped to a
``Fact`` and the batch goes to the warehouse's sink in ONE transaction, in a thread. A batch that fails is retried with backoff
(tenacity, the worker's retry settings); then each of its facts is tried alone, and those that
still fail go to the dead-letter topic, so one bad record does not take a thousand good ones
with it. A record that cannot be read (no fact can ever come of it) goes to the dead-letter
topic at once. A batch's offsets are acknowledged (committed) only when it is done, i.e. stored
or dead-lettered: at least once. A fact's id is its record's ``event_id``, and the sink stores a
fact once and adds to the rollups only what it newly stored, so redelivery, a restart and a
replay from the beginning change nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mode import Service
from sqlalchemy.orm import Session
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from core.logging import get_logger
from core.settings import Settings
from domain.analytics.facts import DOMAIN_EVENT_TYPES, Fact, UnreadableRecord, to_fact, tracked_fact
from domain.analytics.tracking import SCHEMA_VERSION, TrackingRecord
from domain.uow import UnitOfWork
from streams.topics import TRACKING, ensure_topics, tracking_topic
from streams.worker import REPLAY_FOR, Processor, Record, agent_topics, observe_many

log = get_logger(__name__)

ANALYTICS = "analytics"

Sink = Callable[[Session, Sequence[Fact]], Any]


# --- tracking: the API's producer ----------------------------------------------------------------


class TrackingUnavailable(RuntimeError):
    """The broker did not take (or acknowledge) the batch in time."""


def make_tracking_producer(settings: Settings) -> Any:
    """kafka-python producer of the tracking topic (creates the topic if missing). Raises when
    the broker cannot be reached within ``AQSTREAM_ANALYTICS_PUBLISH_TIMEOUT_S``."""
    from kafka import KafkaProducer

    if not settings.kafka_bootstrap:
        raise TrackingUnavailable("AQSTREAM_KAFKA_BOOTSTRAP is not set")
    timeout_ms = int(settings.analytics_publish_timeout_s * 1000)
    ensure_topics(settings.kafka_bootstrap, [tracking_topic(settings)], timeout_ms=timeout_ms)
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="aqstream-api-tracking",
        acks="all",
        linger_ms=2,
        max_block_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
        delivery_timeout_ms=timeout_ms + 1_000,
        reconnect_backoff_max_ms=1_000,
        bootstrap_timeout_ms=timeout_ms,
    )


def tracking_headers(record: TrackingRecord, correlation_id: str | None) -> list[tuple[str, bytes]]:
    """The relay's headers (streams.relay.headers), for a tracked action."""
    return [
        ("event_id", record.id.encode()),
        ("event_type", record.event_type.encode()),
        ("schema_version", str(SCHEMA_VERSION).encode()),
        ("aggregate_type", TRACKING.encode()),
        ("tenant_id", str(record.tenant_id).encode()),
        ("correlation_id", (correlation_id or "").encode()),
        ("occurred_at", record.value["occurred_at"].encode()),
        ("content_type", b"application/json"),
    ]


def publish_tracking(
    producer: Any,
    topic: str,
    records: Sequence[TrackingRecord],
    *,
    timeout_s: float,
    correlation_id: str | None = None,
) -> None:
    """Send ``records`` and wait until the broker acknowledged every one (blocking); raise
    ``TrackingUnavailable`` otherwise (some may have landed: a retry with the same action ids is
    harmless, the warehouse stores a fact once)."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    try:
        futures = [
            producer.send(
                topic,
                key=record.key.encode(),
                value=json.dumps(record.value, separators=(",", ":")).encode(),
                headers=tracking_headers(record, correlation_id),
            )
            for record in records
        ]
        producer.flush(timeout=max(0.0, deadline - time.monotonic()))
        for future in futures:
            future.get(timeout=max(0.01, deadline - time.monotonic()))
    except KafkaError as exc:
        raise TrackingUnavailable(f"the broker did not acknowledge the batch: {exc!r}") from exc


# --- the agent ---------------------------------------------------------------------------------


def warehouse_sink() -> Sink:
    from warehouse.sink import ingest

    return ingest


def store(sessions: Any, sink: Sink, facts: Sequence[Fact]) -> Any:
    """One transaction: the sink stores ``facts`` and updates the rollups (blocking)."""
    with UnitOfWork(sessions) as uow:
        result = sink(uow.session, facts)
        uow.commit()
    return result


@dataclass
class AnalyticsAgent:
    """Maps and stores batches of records; dead letters through the worker's ``Processor``."""

    processor: Processor
    sink: Sink
    stored_batches: int = 0

    @property
    def settings(self) -> Settings:
        return self.processor.deps.settings

    async def handle(self, records: Sequence[Record]) -> None:
        """One batch of records: each stored or dead-lettered when this returns."""
        await self.store(*await self.prepare(records))

    async def prepare(self, records: Sequence[Record]) -> tuple[list[Fact], list[Record]]:
        """The facts of ``records`` and the record of each; an unreadable record is
        dead-lettered here, other types (and other agents' replays) are skipped."""
        metrics = self.processor.metrics
        facts: list[Fact] = []
        sources: list[Record] = []
        for record in records:
            target = record.headers.get(REPLAY_FOR)
            if target and target != ANALYTICS:
                metrics.records.labels(ANALYTICS, "skipped").inc()
                continue  # a replayed dead letter of another agent
            try:
                fact = to_fact(record.event_type, record.payload(), record.headers)
            except (UnreadableRecord, ValueError) as exc:
                await self._unreadable(record, exc)
                continue
            if fact is None:
                metrics.records.labels(ANALYTICS, "skipped").inc()
                continue
            facts.append(fact)
            sources.append(record)
        return facts, sources

    async def prepare_tracking(self, messages: Sequence[Any]) -> tuple[list[Fact], list[Any]]:
        """``prepare`` for the tracking topic's records as aiokafka hands them over (the hot
        path): ``map_tracking`` in a thread, so that the event loop stays free for the fetches
        and the other lanes meanwhile; then what it could not map on its own: the unreadable
        records are dead-lettered, and those that are not tracked actions or that replay a dead
        letter go through ``prepare``. The sources are the messages themselves
        (``Record.of_message`` when one must be dead-lettered)."""
        facts, sources, unreadable, others = await asyncio.to_thread(self.map_tracking, messages)
        for message, exc in unreadable:
            await self._unreadable(Record.of_message(message), exc)
        if others:
            more, more_sources = await self.prepare([Record.of_message(m) for m in others])
            facts += more
            sources += more_sources
        return facts, sources

    @staticmethod
    def map_tracking(
        messages: Sequence[Any],
    ) -> tuple[list[Fact], list[Any], list[tuple[Any, UnreadableRecord]], list[Any]]:
        """The facts of tracking records (no ``Record``, no decoded header dict, no JSON dict):
        ``tracked_fact`` reads each value with a typed decoder and takes three headers. Returns
        (facts, their messages, the unreadable messages with why, the messages that are not
        tracked actions or that replay a dead letter). Pure: safe in any thread."""
        facts: list[Fact] = []
        sources: list[Any] = []
        unreadable: list[tuple[Any, UnreadableRecord]] = []
        others: list[Any] = []
        for message in messages:
            headers = dict(message.headers or ())  # a name given twice: the last one counts
            event_type = headers.get("event_type")
            if not event_type or REPLAY_FOR in headers:
                others.append(message)
                continue
            fact_id, tenant, occurred = (
                headers.get("event_id"),
                headers.get("tenant_id"),
                headers.get("occurred_at"),
            )
            try:
                fact = tracked_fact(
                    event_type.decode(),
                    message.value,
                    fact_id.decode() if fact_id else None,
                    tenant.decode() if tenant else None,
                    occurred.decode() if occurred else None,
                )
            except UnreadableRecord as exc:
                unreadable.append((message, exc))
                continue
            if fact is None:
                others.append(message)
                continue
            facts.append(fact)
            sources.append(message)
        return facts, sources, unreadable, others

    async def _unreadable(self, record: Record, exc: Exception) -> None:
        """A record no fact can ever come of: to the dead-letter topic at once."""
        self.processor.metrics.records.labels(ANALYTICS, "dead_letter").inc()
        log.error("unreadable_record", topic=record.topic, offset=record.offset, error=repr(exc))
        await self.processor.dead_letter(ANALYTICS, record, exc, 1)

    async def store(self, facts: Sequence[Fact], sources: Sequence[Any]) -> None:
        """Store the batch in one transaction (retried); failing that, fact by fact. ``sources``
        are the facts' records: ``Record``s, or aiokafka's messages (the tracking service)."""
        if not facts:
            return
        started = time.perf_counter()
        try:
            await self._store(facts)
            self._stored(facts)
        except Exception as exc:
            log.warning("analytics_batch_failed", facts=len(facts), error=repr(exc))
            await self._one_by_one(facts, sources)
        self.processor.metrics.seconds.labels(ANALYTICS).observe(time.perf_counter() - started)

    async def _store(self, facts: Sequence[Fact]) -> None:
        s = self.settings
        attempts = 0
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(s.worker_retry_attempts),
            wait=wait_exponential(multiplier=s.worker_retry_base_s, max=s.worker_retry_max_s),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                if attempts > 1:
                    self.processor.metrics.retries.labels(ANALYTICS).inc()
                await asyncio.to_thread(store, self.processor.deps.warehouse, self.sink, facts)

    async def _one_by_one(self, facts: Sequence[Fact], sources: Sequence[Any]) -> None:
        """After a batch failed every try: each fact alone, once; what fails is dead-lettered."""
        attempts = self.settings.worker_retry_attempts + 1
        for fact, source in zip(facts, sources, strict=True):
            record = source if isinstance(source, Record) else Record.of_message(source)
            try:
                await asyncio.to_thread(store, self.processor.deps.warehouse, self.sink, [fact])
                self._stored([fact])
            except Exception as exc:
                self.processor.metrics.records.labels(ANALYTICS, "dead_letter").inc()
                log.error(
                    "dead_letter",
                    agent=ANALYTICS,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    event_type=record.event_type,
                    event_id=record.headers.get("event_id"),
                    error=repr(exc),
                )
                await self.processor.dead_letter(ANALYTICS, record, exc, attempts)

    def _stored(self, facts: Sequence[Fact]) -> None:
        """Count a stored batch: records and facts by kind, and each fact's lag (from the
        fact's time to now)."""
        metrics = self.processor.metrics
        self.stored_batches += 1
        metrics.records.labels(ANALYTICS, "ok").inc(len(facts))
        for kind, n in Counter(fact.kind.value for fact in facts).items():
            metrics.facts.labels(kind).inc(n)
        now = time.time()
        observe_many(
            metrics.lag.labels(ANALYTICS),
            [max(0.0, now - fact.occurred_at.timestamp()) for fact in facts],
        )


def install(app: Any, processor: Processor, sink: Sink | None = None) -> AnalyticsAgent:
    """Register the analytics consumers on the worker's Faust app: the ``analytics`` agent for
    the domain topics and the tracking service for the tracking topic, sharing one sink."""
    settings: Settings = processor.deps.settings
    assert processor.deps.warehouse is not None, "the analytics store as the warehouse role"
    agent = AnalyticsAgent(processor, sink or warehouse_sink())
    channel = app.topic(
        *agent_topics(settings, DOMAIN_EVENT_TYPES), key_type=bytes, value_type=bytes
    )

    async def analytics(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(
            settings.analytics_batch_max, within=settings.analytics_batch_within_s
        ):
            await agent.handle([Record.of(event) for event in events])

    app.agent(channel, name=ANALYTICS, concurrency=1)(analytics)
    app.service(tracking_service(app.conf.id, agent))
    return agent


def tracking_service(group: str, agent: AnalyticsAgent) -> type[Service]:
    """The worker's consumer of the tracking topic, a service of the Faust app (started and
    stopped with it) that reads with aiokafka instead of a Faust stream.

    Why not an agent: tracking is the platform's one high-volume topic, and a Faust stream
    costs about 300 microseconds of the event loop per record here (it wraps every record in an
    event and awaits two tasks for it): measured with a sink that did nothing, the worker
    delivered 2,700 records/s where a plain aiokafka loop reads 60,000-85,000
    (docs/benchmarks.md). Each batch is mapped and stored (or dead-lettered) by
    ``AnalyticsAgent`` before its offsets are committed, in the consumer group
    ``<worker group>.tracking``: at least once, and the sink stores a fact once."""
    settings = agent.settings

    class TrackingService(Service):
        consumer: Any = None

        async def on_start(self) -> None:
            from aiokafka import AIOKafkaConsumer

            assert settings.kafka_bootstrap
            self.consumer = AIOKafkaConsumer(
                tracking_topic(settings).name,
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=f"{group}.tracking",
                group_id=f"{group}.tracking",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
                max_poll_records=settings.analytics_batch_max,
                session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
                heartbeat_interval_ms=int(settings.worker_heartbeat_interval_s * 1000),
                rebalance_timeout_ms=int(settings.worker_rebalance_timeout_s * 1000),
            )
            await self.consumer.start()

        async def on_shutdown(self) -> None:
            """After the consuming task is cancelled (``on_stop`` would come before it, and a
            fetch on a stopped consumer raises): leave the group."""
            if self.consumer is not None:
                await self.consumer.stop()

        @Service.task
        async def _consume(self) -> None:
            """Fetch records and deal them to the lanes: partition ``p`` goes to lane
            ``p % AQSTREAM_ANALYTICS_STORE_CONCURRENCY``. Each lane, whenever it is free, takes
            the records waiting for it (up to ``AQSTREAM_ANALYTICS_BATCH_MAX``, oldest first),
            maps them in a thread, stores them in one transaction and commits their offsets (a
            partition is in one lane, so its offsets are committed in order). So a batch is
            what came while the lane was busy: small under light load, full under a backlog.
            The lanes store at the same time; the topic is keyed by event, so they hold disjoint
            events and rollup rows (the sink's per-event locks would keep them apart anyway).
            The fetch takes ``_CHUNK`` records at a time and then lets the lanes run: aiokafka
            unpacks a fetch without yielding, and a lane whose store has ended waits for the
            event loop to commit and take its next batch. At most ``2 x BATCH_MAX`` records
            wait per lane: the fetch waits for a full lane (docs/benchmarks.md)."""
            size = settings.analytics_batch_max
            lanes = [_Lane() for _ in range(settings.analytics_store_concurrency)]
            tasks = [asyncio.ensure_future(self._lane(lane, size)) for lane in lanes]
            within_ms = int(settings.analytics_batch_within_s * 1000)
            try:
                while not self.should_stop:
                    fetched = await self.consumer.getmany(
                        timeout_ms=within_ms, max_records=min(size, _CHUNK)
                    )
                    _deal(fetched, lanes)
                    await asyncio.sleep(0)
                    for lane, task in zip(lanes, tasks, strict=True):
                        await lane.room(2 * size, task)
            finally:
                for task in tasks:
                    task.cancel()

        async def _lane(self, lane: _Lane, size: int) -> None:
            """Store the lane's batches in turn, each mapped while the one before is stored
            (mapping is about a fifth of a batch's time), and commit a batch's offsets once it
            is stored."""

            async def next_batch() -> tuple[list[Any], list[Fact], list[Any]]:
                messages = await lane.take(size)
                return messages, *await agent.prepare_tracking(messages)

            messages, facts, sources = await next_batch()
            while True:
                storing = asyncio.ensure_future(agent.store(facts, sources))
                mapping = asyncio.ensure_future(next_batch())
                try:
                    await storing
                    await self._commit(_offsets(messages))
                except BaseException:
                    mapping.cancel()
                    raise
                messages, facts, sources = await mapping

        async def _commit(self, offsets: dict[Any, int]) -> None:
            from aiokafka.errors import CommitFailedError, IllegalStateError

            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:  # a rebalance took them
                log.warning("tracking_commit_failed", error=repr(exc))

    return TrackingService


# Records the tracking service's fetch unpacks before it lets the lanes run (about 15 ms of the
# event loop at some 14 µs a record).
_CHUNK = 1000


def _offsets(messages: Sequence[Any]) -> dict[Any, int]:
    """The offsets to commit once ``messages`` are stored: the next one of each partition."""
    from aiokafka import TopicPartition

    offsets = {}
    for message in messages:  # in order: the last of each partition wins
        offsets[TopicPartition(message.topic, message.partition)] = message.offset + 1
    return offsets


def _deal(fetched: dict[Any, list[Any]], lanes: Sequence[_Lane]) -> None:
    """Put a fetch's records (by topic partition) in their lanes: partition ``p``'s go to lane
    ``p % len(lanes)``, in order."""
    for tp, records in fetched.items():
        lanes[tp.partition % len(lanes)].put(records)


class _Lane:
    """The records waiting for one lane of the tracking service, oldest first: the fetch puts
    them in, the lane takes them out a batch at a time."""

    def __init__(self) -> None:
        self.waiting: deque[Any] = deque()
        self._changed = asyncio.Event()

    def put(self, records: Sequence[Any]) -> None:
        self.waiting.extend(records)
        self._changed.set()

    async def take(self, size: int) -> list[Any]:
        """The oldest ``size`` records at most, waiting for one if there is none."""
        while not self.waiting:
            self._changed.clear()
            await self._changed.wait()
        batch = [self.waiting.popleft() for _ in range(min(size, len(self.waiting)))]
        self._changed.set()
        return batch

    async def room(self, most: int, task: asyncio.Future[None]) -> None:
        """Return once fewer than ``most`` records wait; a lane that failed (a dead letter that
        could not be sent) fails the fetch instead of blocking it."""
        while len(self.waiting) >= most and not task.done():
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            await asyncio.wait({changed, task}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
        if task.done():
            task.result()  # raises: a lane ends only by failing
            raise RuntimeError("a tracking lane stopped")
