"""Analytics on the Kafka side: the API's producer of the tracking topic, and the worker's
``analytics`` agent, which turns records into warehouse facts.

**Tracking** (``publish_tracking``): the API sends tracked actions straight to
``<namespace>.tracking.v1`` (no database, no outbox), key = the event id, headers as the relay's,
and answers only once the broker acknowledged every record of the batch (``acks=all``).

**The agent** consumes the tracking topic and the domain topics carrying the counted event types
(``domain.analytics.facts.DOMAIN_KINDS``), in batches (``stream.take_events``: up to
``AQSTREAM_ANALYTICS_BATCH_MAX`` records or ``AQSTREAM_ANALYTICS_BATCH_WITHIN_S``), maps each
record to a ``Fact`` and hands the batch to the warehouse's sink in ONE transaction, in a thread.
A batch that fails is retried with backoff (tenacity, the worker's retry settings); then each of
its facts is tried alone, and those that still fail go to the dead-letter topic, so one bad
record does not take a thousand good ones with it. A record that cannot be read (no fact can
ever come of it) goes to the dead-letter topic at once. The batch's offsets are acknowledged
only when its body is done, i.e. stored or dead-lettered: at least once. A fact's id is its
record's ``event_id``, and the sink stores a fact once and recomputes rollups absolutely, so
redelivery, a restart and a replay from the beginning change nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from aqstream.logging import get_logger
from aqstream.settings import Settings
from domain.analytics.facts import DOMAIN_EVENT_TYPES, UnreadableRecord, to_fact
from domain.analytics.tracking import SCHEMA_VERSION, TrackingRecord
from domain.uow import UnitOfWork
from streams.topics import TRACKING, ensure_topics, tracking_topic
from streams.worker import REPLAY_FOR, Processor, Record, _epoch, agent_topics
from warehouse.facts import Fact

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


def analytics_topics(settings: Settings) -> list[str]:
    return [*agent_topics(settings, DOMAIN_EVENT_TYPES), tracking_topic(settings).name]


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
                metrics.records.labels(ANALYTICS, "dead_letter").inc()
                log.error(
                    "unreadable_record", topic=record.topic, offset=record.offset, error=repr(exc)
                )
                await self.processor.dead_letter(ANALYTICS, record, exc, 1)
                continue
            if fact is None:
                metrics.records.labels(ANALYTICS, "skipped").inc()
                continue
            facts.append(fact)
            sources.append(record)
        if not facts:
            return
        started = time.perf_counter()
        try:
            await self._store(facts)
            self._stored(facts, sources)
        except Exception as exc:
            log.warning("analytics_batch_failed", facts=len(facts), error=repr(exc))
            await self._one_by_one(facts, sources)
        metrics.seconds.labels(ANALYTICS).observe(time.perf_counter() - started)

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
                await asyncio.to_thread(store, self.processor.deps.sessions, self.sink, facts)

    async def _one_by_one(self, facts: Sequence[Fact], sources: Sequence[Record]) -> None:
        """After a batch failed every try: each fact alone, once; what fails is dead-lettered."""
        attempts = self.settings.worker_retry_attempts + 1
        for fact, record in zip(facts, sources, strict=True):
            try:
                await asyncio.to_thread(store, self.processor.deps.sessions, self.sink, [fact])
                self._stored([fact], [record])
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

    def _stored(self, facts: Sequence[Fact], sources: Sequence[Record]) -> None:
        metrics = self.processor.metrics
        self.stored_batches += 1
        metrics.records.labels(ANALYTICS, "ok").inc(len(facts))
        for fact in facts:
            metrics.facts.labels(fact.kind.value).inc()
        now = time.time()
        for record in sources:
            occurred = _epoch(record.headers.get("occurred_at"))
            if occurred is not None:
                metrics.lag.labels(ANALYTICS).observe(max(0.0, now - occurred))


def install(app: Any, processor: Processor, sink: Sink | None = None) -> AnalyticsAgent:
    """Register the ``analytics`` agent on the worker's Faust app."""
    settings: Settings = processor.deps.settings
    agent = AnalyticsAgent(processor, sink or warehouse_sink())
    channel = app.topic(*analytics_topics(settings), key_type=bytes, value_type=bytes)

    async def analytics(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(
            settings.analytics_batch_max, within=settings.analytics_batch_within_s
        ):
            await agent.handle([Record.of(event) for event in events])

    app.agent(channel, name=ANALYTICS, concurrency=1)(analytics)
    return agent
