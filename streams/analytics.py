"""Analytics in the worker: records to warehouse facts, for both consumers that feed the
warehouse, which share one ``AnalyticsAgent``.

The Faust agent ``analytics`` (registered here by ``install``) reads the domain topics carrying
the counted event types (``domain.analytics.facts.DOMAIN_KINDS``) in batches
(``stream.take_events``: up to ``AQSTREAM_ANALYTICS_BATCH_MAX`` records or what came within
``AQSTREAM_ANALYTICS_BATCH_WITHIN_S``); the tracking service (``streams/tracking.py``) reads the
high-volume tracking topic and hands its batches to the same agent (``prepare_tracking``). Each
record is mapped to a ``Fact`` and the batch goes to the warehouse's sink in ONE transaction, in
a thread. A batch that fails is retried with backoff (the processor's ``retry``, the worker's
retry settings); then each of its facts is tried alone, and those that still fail go to the
dead-letter topic, so one bad record does not take a thousand good ones with it. A record that
cannot be read (no fact can ever come of it) goes to the dead-letter topic at once. A batch's
offsets are acknowledged (committed) only when it is done, i.e. stored or dead-lettered: at
least once. A fact's id is its record's ``event_id``, and the sink stores a fact once and adds
to the rollups only what it newly stored, so redelivery, a restart and a replay from the
beginning change nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.logging import get_logger
from core.settings import Settings
from domain.analytics.facts import DOMAIN_EVENT_TYPES, Fact, UnreadableRecord, to_fact, tracked_fact
from domain.outbox.records import decode_headers
from domain.uow import UnitOfWork
from streams.dlq import REPLAY_FOR
from streams.metrics import observe_many
from streams.processor import Processor
from streams.records import Record
from streams.topics import agent_topics

log = get_logger(__name__)

ANALYTICS = "analytics"
# What the tracking hot path reads of a record's headers.
_TRACKING_HEADERS = frozenset(("event_type", "event_id", "tenant_id", "occurred_at", REPLAY_FOR))

Sink = Callable[[Session, Sequence[Fact]], Any]


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
            if self.processor.replay_of_another(ANALYTICS, record):
                continue
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
        ``tracked_fact`` reads each value with a typed decoder and takes three headers (only
        the headers read are decoded). Returns
        (facts, their messages, the unreadable messages with why, the messages that are not
        tracked actions or that replay a dead letter). Pure: safe in any thread."""
        facts: list[Fact] = []
        sources: list[Any] = []
        unreadable: list[tuple[Any, UnreadableRecord]] = []
        others: list[Any] = []
        for message in messages:
            headers = decode_headers(message.headers or (), _TRACKING_HEADERS)
            event_type = headers.get("event_type")
            if not event_type or REPLAY_FOR in headers:
                others.append(message)
                continue
            try:
                fact = tracked_fact(
                    event_type,
                    message.value,
                    headers.get("event_id") or None,
                    headers.get("tenant_id") or None,
                    headers.get("occurred_at") or None,
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
        warehouse = self.processor.deps.warehouse
        await self.processor.retry(
            ANALYTICS, lambda: asyncio.to_thread(store, warehouse, self.sink, facts)
        )

    async def _one_by_one(self, facts: Sequence[Fact], sources: Sequence[Any]) -> None:
        """After a batch failed every try: each fact alone, once; what fails is dead-lettered."""
        attempts = self.settings.worker_retry_attempts + 1
        for fact, source in zip(facts, sources, strict=True):
            record = source if isinstance(source, Record) else Record.of_message(source)
            try:
                await asyncio.to_thread(store, self.processor.deps.warehouse, self.sink, [fact])
                self._stored([fact])
            except Exception as exc:
                await self.processor.give_up(ANALYTICS, record, exc, attempts)

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
    """Register the ``analytics`` agent for the domain topics on the worker's Faust app; the
    agent it answers is the one the tracking service (``streams/tracking.py``) stores with."""
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
    return agent
